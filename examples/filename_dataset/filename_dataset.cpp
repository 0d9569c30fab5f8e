// Example: a dataset plugin, built out of tree against the installed kgain SDK.
//
// Many pathology sets come as one folder of images whose file names carry the class and the
// patient, e.g. BreakHis: SOB_B_F-14-25197-400-033.png is benign (B), patient 14-25197. This
// loader takes a regular expression with named parts: the capture group `label` gives the
// class and the optional group `group` gives the patient, so kgain's splits keep each patient
// on one side. It lists images only; kgain decodes and preprocesses them.
//
// Options: `declared_options` below (`kgain list --options filename`).
//
// Example for BreakHis (class B/M, patient like 14-25197):
//   [dataset]
//   plugin = "filename"
//   root = "../shared/data/breakhis-samples"
//   pattern = "^SOB_([BM])_[A-Z]+-(\\d+-[0-9A-Z]+)-\\d+-\\d+\\.png$"
//   label_group = 1
//   group_group = 2
#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

namespace fs = std::filesystem;

namespace {

class FilenameDataset : public kgain::Dataset {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("root", nullptr, "the folder, searched recursively").required(),
      kgain::option::string("pattern", nullptr,
                            "ECMAScript regular expression matched against each file name; its capture groups give "
                            "class and group")
          .required(),
      kgain::option::integer("label_group", "1", "the capture group (1-based) holding the class").between(1, 99),
      kgain::option::integer("group_group", "0", "the capture group holding the patient; 0 = no group").between(0, 99),
  };

  explicit FilenameDataset(const kgain::Options& options)
      : root_(options.require_path("root")),
        pattern_text_(options.require_string("pattern")),
        label_group_(options.get_int("label_group")),
        group_group_(options.get_int("group_group")) {
    std::regex pattern;
    try {
      pattern = std::regex(pattern_text_);
    } catch (const std::regex_error& e) {
      throw options.error("pattern", std::string("is not a valid regular expression (") + e.what() + ")");
    }
    if (!fs::is_directory(root_)) throw options.error("root", "'" + root_ + "' is not a directory");
    std::vector<std::pair<std::string, std::string>> found;  // path, class
    std::vector<std::string> groups;
    for (const auto& entry : fs::recursive_directory_iterator(root_)) {
      if (!entry.is_regular_file()) continue;
      const std::string name = entry.path().filename().string();
      std::smatch m;
      if (!std::regex_match(name, m, pattern)) continue;  // other files (READMEs, masks) are not images of the set
      if (label_group_ >= static_cast<std::int64_t>(m.size()) || group_group_ >= static_cast<std::int64_t>(m.size()))
        throw options.error(
            "pattern", "has " + std::to_string(m.size() - 1) + " capture groups; label_group or group_group is larger");
      found.emplace_back(entry.path().string(), m[label_group_]);
      groups.push_back(group_group_ > 0 ? std::string(m[group_group_]) : std::string());
    }
    if (found.empty()) throw options.error("pattern", "matches no file name under '" + root_ + "'");
    for (const auto& f : found) classes_.push_back(f.second);
    std::sort(classes_.begin(), classes_.end());
    classes_.erase(std::unique(classes_.begin(), classes_.end()), classes_.end());
    std::map<std::string, int> index;
    for (std::size_t i = 0; i < classes_.size(); ++i) index[classes_[i]] = static_cast<int>(i);
    for (std::size_t i = 0; i < found.size(); ++i)
      samples_.push_back({found[i].first, index[found[i].second], groups[i], ""});
    std::sort(samples_.begin(), samples_.end(),
              [](const kgain::Sample& a, const kgain::Sample& b) { return a.path < b.path; });
  }

  std::vector<std::string> class_names() const override { return classes_; }
  std::vector<kgain::Sample> samples() const override { return samples_; }
  std::string description() const override { return "files under " + root_ + " matching " + pattern_text_; }

 private:
  std::string root_, pattern_text_;
  std::int64_t label_group_, group_group_;
  std::vector<std::string> classes_;
  std::vector<kgain::Sample> samples_;
};

}  // namespace

KGAIN_LIBRARY("example_filename_dataset",
              kgain::make_plugin<FilenameDataset>("filename", "1.0.0",
                                                  "class and patient from file names (example plugin)"))
