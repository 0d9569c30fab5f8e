#include "write/splits_file.hpp"

#include <filesystem>
#include <stdexcept>

namespace fs = std::filesystem;

namespace kgain::core {

std::vector<SplitRow> parse_splits_csv(const std::string& text, const std::string& name) {
  static const std::string header = "path,label,group,dataset_split,fold,role\n";
  if (text.compare(0, header.size(), header) != 0)
    throw std::runtime_error(name + " does not start with kgain's header '" + header.substr(0, header.size() - 1) +
                             "'");
  std::vector<SplitRow> rows;
  std::size_t at = header.size(), line = 2;
  std::vector<std::string> fields;
  while (at < text.size()) {
    fields.clear();
    std::string field;
    bool quoted = false, end_of_row = false;
    for (; at < text.size() && !end_of_row; ++at) {
      const char c = text[at];
      if (quoted) {
        if (c == '"' && at + 1 < text.size() && text[at + 1] == '"')
          field += '"', ++at;
        else if (c == '"')
          quoted = false;
        else
          field += c;
      } else if (c == '"' && field.empty()) {
        quoted = true;
      } else if (c == ',') {
        fields.push_back(std::move(field)), field.clear();
      } else if (c == '\n') {
        end_of_row = true;
      } else {
        field += c;
      }
    }
    if (quoted || !end_of_row) throw std::runtime_error(name + ": line " + std::to_string(line) + " is cut short");
    fields.push_back(std::move(field));
    if (fields.size() != 6)
      throw std::runtime_error(name + ": line " + std::to_string(line) + " has " + std::to_string(fields.size()) +
                               " fields, not 6");
    SplitRow row;
    row.path = fs::path(fields[0]).lexically_normal().string();
    row.label = fields[1], row.group = fields[2], row.dataset_split = fields[3], row.role = fields[5];
    const std::string& fold = fields[4];
    if (fold.empty() || fold.size() > 6 || fold.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error(name + ": line " + std::to_string(line) + ": the fold '" + fold + "' is not a number");
    row.fold = std::stoi(fold);
    if (row.role != "train" && row.role != "test" && row.role != "unused")
      throw std::runtime_error(name + ": line " + std::to_string(line) + ": the role '" + row.role +
                               "' is not train, test or unused");
    rows.push_back(std::move(row));
    ++line;
  }
  return rows;
}

}  // namespace kgain::core
