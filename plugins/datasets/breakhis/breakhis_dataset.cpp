// Dataset `breakhis`: the BreakHis breast tumour set (Spanhol et al. 2016), from its files.
//
// BreakHis file names carry everything: SOB_<B|M>_<subtype>-<year>-<patient>-<magnification>-<seq>.png,
// e.g. SOB_B_F-14-25197-400-033.png is a benign fibroadenoma of patient 14-25197 at 400x. The
// loader reads every such file under `root` (the original folder tree or a flat folder), uses
// the patient as the group, so that kgain's splits keep each patient on one side, as BreakHis
// studies must, and can keep one magnification only.
//
// Options: `declared_options` below (`kgain list --options breakhis`). The 8 subtypes of
// `labels = "subtype"`: adenosis, fibroadenoma, phyllodes_tumor, tubular_adenoma (benign);
// ductal_carcinoma, lobular_carcinoma, mucinous_carcinoma, papillary_carcinoma (malignant).
#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

namespace fs = std::filesystem;

namespace {

const std::map<std::string, std::string> subtype_names{{"A", "adenosis"},
                                                       {"F", "fibroadenoma"},
                                                       {"PT", "phyllodes_tumor"},
                                                       {"TA", "tubular_adenoma"},
                                                       {"DC", "ductal_carcinoma"},
                                                       {"LC", "lobular_carcinoma"},
                                                       {"MC", "mucinous_carcinoma"},
                                                       {"PC", "papillary_carcinoma"}};

class BreakHisDataset : public kgain::Dataset {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("root", nullptr, "the folder holding the images (searched recursively)").required(),
      kgain::option::integers("magnifications", "[]",
                              "which magnifications, e.g. [40] or [100, 200]; the set has 40, 100, 200 and 400; "
                              "[] = all")
          .between(40, 400),
      kgain::option::string("labels", "\"binary\"", "`binary`: benign or malignant; `subtype`: the 8 subtypes")
          .one_of("binary|subtype"),
  };

  explicit BreakHisDataset(const kgain::Options& options) : root_(options.require_path("root")) {
    const auto magnifications = options.get_int_list("magnifications");
    for (auto m : magnifications)
      if (m != 40 && m != 100 && m != 200 && m != 400)
        throw options.error("magnifications", "BreakHis has 40, 100, 200 and 400 (received " + std::to_string(m) + ")");
    const std::string labels = options.get_string("labels");
    if (!fs::is_directory(root_))
      throw options.error("root", "'" + root_ + "' is not a directory; point it at the BreakHis folder");

    // SOB_<class>_<subtype>-<year>-<patient>-<magnification>-<seq>.png; patient ids may hold letters (14-22549AB).
    const std::regex name(R"(^SOB_([BM])_([A-Z]+)-(\d+)-([0-9A-Za-z]+)-(\d+)-(\d+)\.png$)", std::regex::icase);
    std::vector<std::pair<std::string, std::string>> found;  // path, class name
    std::vector<std::string> patients;
    for (const auto& entry : fs::recursive_directory_iterator(root_)) {
      if (!entry.is_regular_file()) continue;
      std::smatch m;
      const std::string file = entry.path().filename().string();
      if (!std::regex_match(file, m, name)) continue;
      const int magnification = std::stoi(m[5]);
      if (!magnifications.empty() &&
          std::find(magnifications.begin(), magnifications.end(), magnification) == magnifications.end())
        continue;
      std::string cls = m[1] == "B" || m[1] == "b" ? "benign" : "malignant";
      if (labels == "subtype") {
        auto it = subtype_names.find(m[2]);
        if (it == subtype_names.end())
          throw std::runtime_error(entry.path().string() + ": unknown BreakHis subtype '" + std::string(m[2]) + "'");
        cls = it->second;
      }
      found.emplace_back(entry.path().string(), cls);
      patients.push_back(std::string(m[3]) + "-" + std::string(m[4]));
    }
    if (found.empty())
      throw options.error("root", "no BreakHis image (SOB_<B|M>_<type>-<yy>-<patient>-<mag>-<seq>.png) under '" +
                                      root_ + "'" + (magnifications.empty() ? "" : " at the chosen magnifications"));
    std::set<std::string> names;
    for (const auto& f : found) names.insert(f.second);
    classes_.assign(names.begin(), names.end());
    std::vector<std::size_t> order(found.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return found[a].first < found[b].first; });
    for (auto i : order) {
      const int label =
          static_cast<int>(std::find(classes_.begin(), classes_.end(), found[i].second) - classes_.begin());
      samples_.push_back({found[i].first, label, patients[i], ""});
    }
  }
  std::vector<std::string> class_names() const override { return classes_; }
  std::vector<kgain::Sample> samples() const override { return samples_; }
  std::string description() const override { return "BreakHis " + root_; }

 private:
  std::string root_;
  std::vector<std::string> classes_;
  std::vector<kgain::Sample> samples_;
};

}  // namespace

KGAIN_LIBRARY("breakhis",
              kgain::make_plugin<BreakHisDataset>("breakhis", "1.0.0",
                                                  "BreakHis: patient groups and magnification from file names"))
