#include "table.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace kgain::wsi {
namespace {

constexpr std::size_t max_table_bytes = 256u << 20;

// Splits one line into fields; quotes as in RFC 4180 (a line break inside quotes is not supported).
std::vector<std::string> split_fields(const std::string& line, const std::string& where) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c != '"')
        out.back() += c;
      else if (i + 1 < line.size() && line[i + 1] == '"')
        out.back() += '"', ++i;
      else
        quoted = false;
    } else if (c == '"' && out.back().empty())
      quoted = true;
    else if (c == ',')
      out.emplace_back();
    else
      out.back() += c;
  }
  if (quoted) throw std::runtime_error(where + ": a quoted field is not closed");
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}

}  // namespace

std::vector<CsvRow> parse_csv(const std::string& text, const std::string& source,
                              const std::vector<std::string>& required, const std::vector<std::string>& optional) {
  if (text.find('\0') != std::string::npos)
    throw std::runtime_error(source + ": holds a NUL byte (not a text CSV file)");
  std::istringstream in(text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? text.substr(3) : text);
  std::string line;
  int number = 0;
  std::vector<std::string> columns;
  while (columns.empty() && std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    for (auto& c : split_fields(line, source + ":" + std::to_string(number))) columns.push_back(trim(c));
  }
  if (columns.empty())
    throw std::runtime_error(source + ": is empty; the first line names the columns (" + required.front() + ", ...)");
  std::set<std::string> seen;
  std::string known;
  for (const auto& k : required) known += (known.empty() ? "" : ", ") + k;
  for (const auto& k : optional) known += ", " + k;
  for (const auto& c : columns) {
    if (!seen.insert(c).second)
      throw std::runtime_error(source + ":" + std::to_string(number) + ": the column '" + c + "' appears twice");
    bool ok = false;
    for (const auto& k : required) ok = ok || k == c;
    for (const auto& k : optional) ok = ok || k == c;
    if (!ok)
      throw std::runtime_error(source + ":" + std::to_string(number) + ": unknown column '" + c +
                               "'; the columns are " + known);
  }
  for (const auto& k : required)
    if (!seen.count(k))
      throw std::runtime_error(source + ":" + std::to_string(number) + ": no '" + k + "' column; the columns are " +
                               known);
  std::vector<CsvRow> rows;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    const auto fields = split_fields(line, source + ":" + std::to_string(number));
    if (fields.size() > columns.size())
      throw std::runtime_error(source + ":" + std::to_string(number) + ": " + std::to_string(fields.size()) +
                               " fields for " + std::to_string(columns.size()) +
                               " columns (a comma inside a value needs quotes)");
    CsvRow row{number, {}};
    for (std::size_t i = 0; i < columns.size(); ++i)
      row.fields[columns[i]] = i < fields.size() ? trim(fields[i]) : std::string();
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string read_text(const std::string& path, std::size_t max_bytes, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot be read (check the path)");
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_bytes)
      throw std::runtime_error(path + ": larger than " + std::to_string(max_bytes >> 20) + " MB; not " + what);
  }
  return text;
}

std::vector<CsvRow> read_csv(const std::string& path, const std::vector<std::string>& required,
                             const std::vector<std::string>& optional) {
  return parse_csv(read_text(path, max_table_bytes, "a slide or tile list"), path, required, optional);
}

std::int64_t parse_int(const std::string& text, std::int64_t min, std::int64_t max, const std::string& what) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw std::runtime_error(what + ": '" + text + "' is not a whole number");
  if (v < min || v > max)
    throw std::runtime_error(what + ": " + text + " is outside [" + std::to_string(min) + ", " + std::to_string(max) +
                             "]");
  return v;
}

double parse_double(const std::string& text, double min, double max, const std::string& what) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(v))
    throw std::runtime_error(what + ": '" + text + "' is not a finite number");
  if (v < min || v > max) {
    std::ostringstream m;
    m << what << ": " << text << " is outside [" << min << ", " << max << "]";
    throw std::runtime_error(m.str());
  }
  return v;
}

}  // namespace kgain::wsi
