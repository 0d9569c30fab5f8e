// Dataset `folder`: one subfolder per class, images anywhere below it (torchvision's ImageFolder).
//
// Options: `declared_options` below (`kgain list --options folder`).
#include <algorithm>
#include <filesystem>
#include <set>

#include <kgain/dataset.hpp>
#include <kgain/util/group_pattern.hpp>
#include <kgain/plugin.hpp>

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

class FolderDataset : public kgain::Dataset {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("root", nullptr, "the folder holding one subfolder per class").required(),
      kgain::option::strings("classes", nullptr, "which subfolders, in label order; `[]` is an error")
          .computed("the subfolders, sorted"),
      kgain::option::strings("extensions", "[\".png\", \".jpg\", \".jpeg\", \".tif\", \".tiff\", \".bmp\"]",
                             "image file endings (any case)"),
      kgain::option::string("group_pattern", "\"\"",
                            "a regular expression searched in each path relative to root; its first capture group "
                            "(or the whole match) is the image's group (patient, slide); \"\" = each image alone"),
  };

  explicit FolderDataset(const kgain::Options& options) : root_(options.require_path("root")) {
    if (!fs::is_directory(root_))
      throw options.error("root",
                          "'" + root_ + "' is not a directory; point it at the folder with one subfolder per class");
    for (const auto& e : options.get_string_list("extensions")) extensions_.insert(lower(e));
    const kgain::GroupPattern group_pattern(options);
    classes_ = kgain::class_list_option(options);
    if (classes_.empty()) {
      for (const auto& entry : fs::directory_iterator(root_))
        if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
      std::sort(classes_.begin(), classes_.end());
    }
    if (classes_.empty()) throw options.error("root", "'" + root_ + "' has no subfolders: expected one per class");
    for (std::size_t label = 0; label < classes_.size(); ++label) {
      const fs::path dir = fs::path(root_) / classes_[label];
      if (!fs::is_directory(dir)) throw options.error("classes", "class folder '" + dir.string() + "' does not exist");
      std::vector<std::string> paths;
      for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file() && extensions_.count(lower(entry.path().extension().string())))
          paths.push_back(entry.path().string());
      if (paths.empty()) throw options.error("root", "class folder '" + dir.string() + "' holds no images");
      std::sort(paths.begin(), paths.end());
      for (auto& p : paths) {
        std::string group;
        if (group_pattern.enabled()) {
          const std::string relative = fs::relative(p, root_).string();
          const auto found = group_pattern.group_of(relative);
          if (!found)
            throw options.error("group_pattern", "does not match '" + relative +
                                                     "', or finds an empty group in it: every image needs a group");
          group = *found;
        }
        samples_.push_back(kgain::Sample{std::move(p), static_cast<int>(label), group, ""});
      }
    }
  }
  std::vector<std::string> class_names() const override { return classes_; }
  std::vector<kgain::Sample> samples() const override { return samples_; }
  std::string description() const override { return "folder " + root_; }

 private:
  std::string root_;
  std::set<std::string> extensions_;
  std::vector<std::string> classes_;
  std::vector<kgain::Sample> samples_;
};

}  // namespace

KGAIN_LIBRARY("folder", kgain::make_plugin<FolderDataset>("folder", "1.0.0", "one subfolder per class"))
