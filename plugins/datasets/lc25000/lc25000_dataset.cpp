// Dataset `lc25000`: LC25000 lung and colon (Borkowski et al. 2019), from its folder layout.
//
// LC25000 was made by augmenting 250 source tiles per class about 20 times (rotations, flips),
// so near-copies of one tile must stay on one side of a split. The folder layout does not say
// which tile an image came from; a groups file does (a CSV with `path` and `group` columns,
// paths relative to `root`, as lc25000-lung-mini/manifest.csv or the LC25000-clean lists).
// Without one, every image is its own group and kgain warns that the split can leak.
//
// Options: `declared_options` below (`kgain list --options lc25000`).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

namespace fs = std::filesystem;

namespace {

// The comma-separated fields of a line (CRLF or LF), an empty last field included ("a,b," has
// three): that is how a spreadsheet writes an empty last column.
std::vector<std::string> split_line(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    const std::size_t comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// path (relative to root) -> group, from a CSV with path and group columns.
std::map<std::string, std::string> read_groups(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(file + ": the groups file is empty");
  const auto header = split_line(line);
  const auto column = [&](const char* name) {
    const auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1L : static_cast<long>(it - header.begin());
  };
  const long path_col = column("path"), group_col = column("group");
  if (path_col < 0 || group_col < 0)
    throw std::runtime_error(file + ":1: the groups file needs 'path' and 'group' columns");
  std::map<std::string, std::string> groups;
  for (std::size_t line_no = 2; std::getline(in, line); ++line_no) {
    if (line.empty() || line == "\r") continue;
    const auto f = split_line(line);
    if (static_cast<long>(f.size()) <= std::max(path_col, group_col))
      throw std::runtime_error(file + ":" + std::to_string(line_no) + ": " + std::to_string(f.size()) +
                               " fields, too few for the header's 'path' and 'group' columns");
    // An empty group would make the image a group of its own, and the warning about images
    // without a group would not count it: refused, as the manifest dataset refuses it.
    if (f[group_col].find_first_not_of(" \t") == std::string::npos)
      throw std::runtime_error(file + ":" + std::to_string(line_no) +
                               ": the group column is empty; every row of a groups file needs the image's source "
                               "tile (or leave the image out of the file, and kgain warns)");
    groups[f[path_col]] = f[group_col];
  }
  return groups;
}

class Lc25000Dataset : public kgain::Dataset {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("root", nullptr, "the folder with one subfolder per class (lung_aca, lung_n, ...)")
          .required(),
      kgain::option::path("groups", nullptr, "the groups CSV (`path,group`, paths relative to root)")
          .computed("`<root>/manifest.csv` when it has a group column"),
      kgain::option::strings("classes", nullptr, "which class folders, in label order; `[]` is an error")
          .computed("the class folders, sorted"),
  };

  explicit Lc25000Dataset(const kgain::Options& options) : root_(options.require_path("root")) {
    if (!fs::is_directory(root_)) throw options.error("root", "'" + root_ + "' is not a directory");
    std::string groups_file = options.get_path("groups", "");
    if (groups_file.empty() && fs::exists(root_ + "/manifest.csv")) {
      std::ifstream in(root_ + "/manifest.csv");
      std::string header;
      std::getline(in, header);
      if (header.find("group") != std::string::npos) groups_file = root_ + "/manifest.csv";
    } else if (!groups_file.empty() && !fs::exists(groups_file)) {
      throw options.error("groups", "the groups file '" + groups_file + "' does not exist");
    }
    const auto groups = groups_file.empty() ? std::map<std::string, std::string>{} : read_groups(groups_file);

    classes_ = kgain::class_list_option(options);
    if (classes_.empty()) {
      for (const auto& e : fs::directory_iterator(root_))
        if (e.is_directory()) classes_.push_back(e.path().filename().string());
      std::sort(classes_.begin(), classes_.end());
    }
    std::size_t without_group = 0;
    for (std::size_t label = 0; label < classes_.size(); ++label) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(fs::path(root_) / classes_[label])) {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
        if (e.is_regular_file() && (ext == ".jpeg" || ext == ".jpg" || ext == ".png"))
          files.push_back(e.path().filename().string());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        const std::string relative = classes_[label] + "/" + f;
        auto it = groups.find(relative);
        if (it == groups.end()) ++without_group;
        samples_.push_back({root_ + "/" + relative, static_cast<int>(label), it == groups.end() ? "" : it->second, ""});
      }
    }
    if (samples_.empty()) throw options.error("root", "no images in the class folders of '" + root_ + "'");
    if (without_group > 0)  // reported by the core in the log, run.json and the report
      warnings_.push_back(std::to_string(without_group) + " of " + std::to_string(samples_.size()) +
                          " images have no source-tile group" +
                          (groups_file.empty() ? " (no groups file)" : " in " + groups_file) +
                          "; their near-copies may straddle train and test");
  }
  std::vector<std::string> class_names() const override { return classes_; }
  std::vector<kgain::Sample> samples() const override { return samples_; }
  std::vector<std::string> warnings() const override { return warnings_; }
  std::string description() const override { return "LC25000 " + root_; }

 private:
  std::string root_;
  std::vector<std::string> classes_;
  std::vector<kgain::Sample> samples_;
  std::vector<std::string> warnings_;
};

}  // namespace

KGAIN_LIBRARY("lc25000",
              kgain::make_plugin<Lc25000Dataset>("lc25000", "1.0.0", "LC25000 folders with source-tile groups"))
