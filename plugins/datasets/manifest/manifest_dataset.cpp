// Dataset `manifest`: a CSV file listing the images, one per row.
//
// Columns (header row required, any order, extra columns ignored):
//   path  (required) image path, relative to the manifest's folder unless absolute
//   label (required) class name
//   split (optional) the set's own split: train, valid or test
//   group (optional) patient, slide or source tile; splits never separate a group; when the
//         column is there, no row may leave it empty
// Options: `declared_options` below (`kgain list --options manifest`).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <kgain/dataset.hpp>
#include <kgain/util/group_pattern.hpp>
#include <kgain/plugin.hpp>

namespace fs = std::filesystem;

namespace {

// Splits one CSV line; supports double-quoted fields with "" escapes.
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
        fields.back() += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        fields.back() += c;
    } else if (c == '"')
      quoted = true;
    else if (c == ',')
      fields.emplace_back();
    else if (c != '\r')
      fields.back() += c;
  }
  return fields;
}

class ManifestDataset : public kgain::Dataset {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("root", "\"\"", "folder with `manifest.csv` (give this or `file`)"),
      kgain::option::path("file", nullptr, "the manifest, when named otherwise").computed("`<root>/manifest.csv`"),
      kgain::option::strings("classes", nullptr, "label order; rows of other classes are left out; `[]` is an error")
          .computed("the labels, sorted"),
      kgain::option::string("group_pattern", "\"\"",
                            "a regular expression searched in the path column; its first capture group (or the "
                            "whole match) is the group, for manifests without a group column"),
  };

  explicit ManifestDataset(const kgain::Options& options) {
    const std::string root = options.get_path("root");
    file_ = options.get_path("file", root.empty() ? "" : root + "/manifest.csv");
    if (file_.empty())
      throw kgain::OptionError("[" + options.section() + "] needs 'root' (the folder with manifest.csv) or 'file'");
    std::ifstream in(file_);
    if (!in) throw options.error(options.has("file") ? "file" : "root", "cannot open the manifest '" + file_ + "'");
    const fs::path base = fs::path(file_).parent_path();

    std::string line;
    if (!std::getline(in, line))
      throw std::runtime_error(file_ + ": the manifest is empty; expected a header row 'path,label'");
    // Spreadsheets save CSV with a UTF-8 byte-order mark; left in, it would hide the first column.
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    std::map<std::string, std::size_t> column;
    const auto header = split_csv(line);
    for (std::size_t i = 0; i < header.size(); ++i)
      if (!column.emplace(header[i], i).second)
        throw std::runtime_error(file_ + ":1: the header names the column '" + header[i] +
                                 "' twice; which one holds the data is ambiguous");
    for (const char* required : {"path", "label"})
      if (!column.count(required))
        throw std::runtime_error(file_ + ":1: the header has no '" + required + "' column (found '" + line + "')");
    const auto col = [&](const char* name) { return column.count(name) ? static_cast<long>(column[name]) : -1L; };
    const long path_col = col("path"), label_col = col("label"), split_col = col("split"), group_col = col("group");

    const kgain::GroupPattern group_pattern(options);
    if (group_pattern.enabled() && group_col >= 0)
      throw options.error("group_pattern", "the manifest has a group column already; use one or the other");
    std::vector<std::string> labels;
    std::size_t line_no = 1;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty() || line == "\r") continue;
      const auto f = split_csv(line);
      if (f.size() != header.size())
        throw std::runtime_error(file_ + ":" + std::to_string(line_no) + ": expected " + std::to_string(header.size()) +
                                 " fields, found " + std::to_string(f.size()));
      // An empty path would name the manifest's own folder: a bad image under on_bad_image =
      // "skip", so a row of the study vanished without a word.
      if (f[path_col].find_first_not_of(" \t\r") == std::string::npos)
        throw std::runtime_error(file_ + ":" + std::to_string(line_no) +
                                 ": the path is empty; give the image's path or remove the row");
      kgain::Sample s;
      s.path = fs::path(f[path_col]).is_absolute() ? f[path_col] : (base / f[path_col]).string();
      if (split_col >= 0) {
        s.split = f[split_col];
        if (s.split != "train" && s.split != "valid" && s.split != "test" && !s.split.empty())
          throw std::runtime_error(file_ + ":" + std::to_string(line_no) +
                                   ": split must be train, valid or test (found '" + s.split + "')");
      }
      if (group_col >= 0) {
        // An empty cell would make the image a group of its own, free to land on the other side
        // of a split from its patient's other images: with a group column, every row has one.
        s.group = f[group_col];
        if (s.group.find_first_not_of(" \t\r") == std::string::npos)
          throw std::runtime_error(file_ + ":" + std::to_string(line_no) +
                                   ": the group column is empty; a manifest with a group column needs a group on "
                                   "every row (an image with no known patient or source: give it an id of its own)");
      }
      if (group_pattern.enabled()) {
        const auto found = group_pattern.group_of(f[path_col]);
        if (!found)
          throw std::runtime_error(file_ + ":" + std::to_string(line_no) + ": group_pattern does not match the path '" +
                                   f[path_col] + "', or finds an empty group in it: every image needs a group");
        s.group = *found;
      }
      labels.push_back(f[label_col]);
      samples_.push_back(std::move(s));
    }
    if (samples_.empty()) throw std::runtime_error(file_ + ": the manifest lists no images");

    classes_ = kgain::class_list_option(options);
    if (classes_.empty()) {
      classes_ = labels;
      std::sort(classes_.begin(), classes_.end());
      classes_.erase(std::unique(classes_.begin(), classes_.end()), classes_.end());
    }
    std::map<std::string, int> index;
    for (std::size_t i = 0; i < classes_.size(); ++i) index[classes_[i]] = static_cast<int>(i);
    // With an explicit class list, rows of other classes are left out (a subset study).
    std::vector<kgain::Sample> kept;
    for (std::size_t i = 0; i < samples_.size(); ++i) {
      auto it = index.find(labels[i]);
      if (it == index.end()) continue;
      samples_[i].label = it->second;
      kept.push_back(std::move(samples_[i]));
    }
    samples_ = std::move(kept);
  }
  std::vector<std::string> class_names() const override { return classes_; }
  std::vector<kgain::Sample> samples() const override { return samples_; }
  std::string description() const override { return "manifest " + file_; }

 private:
  std::string file_;
  std::vector<std::string> classes_;
  std::vector<kgain::Sample> samples_;
};

}  // namespace

KGAIN_LIBRARY("manifest",
              kgain::make_plugin<ManifestDataset>("manifest", "1.0.0", "CSV with path,label and optional split,group"))
