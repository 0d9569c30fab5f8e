// Dataset loaders on the real sets in ../shared: counts per class match the files, groups and
// patients come out right, and group splits never leak.
#include "test_support.hpp"

#include <filesystem>
#include <map>
#include <set>

#include "plan/registry.hpp"
#include "plan/splits.hpp"

using namespace kgain;
using namespace kgain::core;
using Catch::Matchers::Contains;

namespace {
Registry& registry() {
  static Registry r = [] {
    Registry x;
    x.add_directory(test::plugin_dir());
    return x;
  }();
  return r;
}
std::shared_ptr<Dataset> dataset(const std::string& plugin, Options options) {
  return registry().create<Dataset>(plugin, options);
}
std::map<std::string, int> per_class(const Dataset& d) {
  std::map<std::string, int> out;
  for (const auto& s : d.samples()) out[d.class_names()[s.label]] += 1;
  return out;
}
std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}
}  // namespace

TEST_CASE("breakhis: classes, patients and magnifications from the file names", "[datasets]") {
  const std::string root = test::data_dir() + "/breakhis-samples";
  Options options("dataset", "");
  options.set("root", root);
  auto all = dataset("breakhis", options);
  CHECK(per_class(*all) == std::map<std::string, int>{{"benign", static_cast<int>(files_in(root + "/benign"))},
                                                      {"malignant", static_cast<int>(files_in(root + "/malignant"))}});
  std::set<std::string> patients;
  for (const auto& s : all->samples()) patients.insert(s.group);
  // 14-22549AB, 14-25197, 14-9133, 14-21998AB, 14-3411F (benign); 14-2523, 14-12204, 14-10147, 14-9146 (malignant)
  CHECK(patients == std::set<std::string>{"14-22549AB", "14-25197", "14-9133", "14-21998AB", "14-3411F", "14-2523",
                                          "14-12204", "14-10147", "14-9146"});

  options.set("magnifications", Options::List{std::int64_t{40}});
  options.set("labels", std::string("subtype"));
  auto at40 = dataset("breakhis", options);
  CHECK(at40->samples().size() == 9);
  CHECK(per_class(*at40) == std::map<std::string, int>{{"adenosis", 1},
                                                       {"fibroadenoma", 2},
                                                       {"phyllodes_tumor", 1},
                                                       {"tubular_adenoma", 1},
                                                       {"ductal_carcinoma", 1},
                                                       {"lobular_carcinoma", 1},
                                                       {"mucinous_carcinoma", 1},
                                                       {"papillary_carcinoma", 1}});
  options.set("magnifications", Options::List{std::int64_t{50}}, "study.toml:5:1");
  REQUIRE_THROWS_WITH(dataset("breakhis", options),
                      Contains("study.toml:5:1") && Contains("40, 100, 200 and 400 (received 50)"));
}

TEST_CASE("breakhis: patient splits never put a patient on both sides", "[datasets][splits]") {
  Options options("dataset", "");
  options.set("root", test::data_dir() + "/breakhis-samples");
  const auto samples = dataset("breakhis", options)->samples();
  for (int folds : {2, 3}) {
    const SplitPlan plan = make_splits(samples, 2, "auto", folds, 0);
    CHECK(plan.strategy == "group_kfold");
    for (const auto& fold : plan.folds) CHECK(leaking_groups(samples, fold).empty());
  }
}

TEST_CASE("lc25000: folder layout with source-tile groups, never split", "[datasets][splits]") {
  const std::string root = test::data_dir() + "/lc25000-lung-mini";
  Options options("dataset", "");
  options.set("root", root);
  auto lc = dataset("lc25000", options);
  CHECK(per_class(*lc) == std::map<std::string, int>{{"lung_aca", static_cast<int>(files_in(root + "/lung_aca"))},
                                                     {"lung_n", static_cast<int>(files_in(root + "/lung_n"))},
                                                     {"lung_scc", static_cast<int>(files_in(root + "/lung_scc"))}});
  std::set<std::string> groups;
  for (const auto& s : lc->samples()) {
    CHECK(!s.group.empty());
    groups.insert(s.group);
  }
  CHECK(groups.size() == 360);  // 120 source tiles per class
  const SplitPlan plan = make_splits(lc->samples(), 3, "auto", 5, 0);
  for (const auto& fold : plan.folds) CHECK(leaking_groups(lc->samples(), fold).empty());
}

TEST_CASE("folder and manifest take groups from a regular expression on the path", "[datasets]") {
  Options folder("dataset", "");
  folder.set("root", test::data_dir() + "/breakhis-samples");
  folder.set("group_pattern", std::string(R"(SOB_[BM]_[A-Z]+-(\d+-[0-9A-Z]+)-)"));
  auto d = dataset("folder", folder);
  std::set<std::string> groups;
  for (const auto& s : d->samples()) groups.insert(s.group);
  CHECK(groups.size() == 9);
  CHECK(groups.count("14-25197") == 1);

  folder.set("group_pattern", std::string(R"(patient(\d+))"), "study.toml:4:1");
  REQUIRE_THROWS_WITH(dataset("folder", folder),
                      Contains("study.toml:4:1") && Contains("does not match 'benign/SOB_B_A-14-22549AB-40-001.png'"));
  // An optional capture that takes nothing: every image its own group, silently, before.
  folder.set("group_pattern", std::string(R"(SOB_[BM]_[A-Z]+-(X?))"), "study.toml:5:1");
  REQUIRE_THROWS_WITH(dataset("folder", folder), Contains("study.toml:5:1") && Contains("finds an empty group"));

  Options manifest("dataset", "");
  manifest.set("root", test::data_dir() + "/pcam-mini");
  manifest.set("group_pattern", std::string(R"(^(\d)_)"));  // the class folder as a (silly) group: checks the plumbing
  auto m = dataset("manifest", manifest);
  std::set<std::string> mg;
  for (const auto& s : m->samples()) mg.insert(s.group);
  CHECK(mg == std::set<std::string>{"0", "1"});
  manifest.set("group_pattern", std::string(R"(^(x?)\d_)"));
  REQUIRE_THROWS_WITH(
      dataset("manifest", manifest),
      Contains("manifest.csv:2: group_pattern does not match the path") && Contains("finds an empty group"));
}

TEST_CASE("A manifest or groups file refuses a row without a group, naming its line", "[datasets]") {
  // LC25000's real manifest, one row's group blanked (then made of spaces): that image would be
  // a group of its own, free to straddle a split with its source tile's other images.
  const std::string root = test::data_dir() + "/lc25000-lung-mini";
  std::vector<std::string> lines;
  {
    std::ifstream in(root + "/manifest.csv");
    for (std::string line; std::getline(in, line);) lines.push_back(line.substr(0, line.find('\r')));  // CRLF file
  }
  REQUIRE(lines.size() > 3);
  REQUIRE(lines[0] == "path,label,group");
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "kgain-test-empty-group";
  std::filesystem::create_directories(dir);
  for (const std::string blank : {"", "  "}) {
    std::ofstream out(dir / "manifest.csv");
    for (std::size_t i = 0; i < lines.size(); ++i)
      out << (i == 3 ? lines[i].substr(0, lines[i].rfind(',') + 1) + blank : lines[i]) << "\n";
    out.close();
    Options options("dataset", "");
    options.set("root", root);
    options.set("file", (dir / "manifest.csv").string());
    REQUIRE_THROWS_WITH(dataset("manifest", options),
                        Contains("manifest.csv:4: the group column is empty") && Contains("id of its own"));
    // The lc25000 dataset reads the same file as its groups file.
    Options lc("dataset", "");
    lc.set("root", root);
    lc.set("groups", (dir / "manifest.csv").string());
    REQUIRE_THROWS_WITH(dataset("lc25000", lc),
                        Contains("manifest.csv:4: the group column is empty") && Contains("source tile"));
  }
  std::filesystem::remove_all(dir);
  // The real file, every row grouped, loads.
  Options options("dataset", "");
  options.set("root", root);
  CHECK(dataset("manifest", options)->samples().size() == lines.size() - 1);
}

TEST_CASE("pcam manifest and folder loaders count the files", "[datasets]") {
  const std::string root = test::data_dir() + "/pcam-mini";
  Options manifest("dataset", "");
  manifest.set("root", root);
  auto m = dataset("manifest", manifest);
  CHECK(m->samples().size() == 4500);
  Options folder("dataset", "");
  folder.set("root", root);
  auto f = dataset("folder", folder);
  CHECK(per_class(*f) == std::map<std::string, int>{{"0_no_tumor", static_cast<int>(files_in(root + "/0_no_tumor"))},
                                                    {"1_tumor", static_cast<int>(files_in(root + "/1_tumor"))}});
  CHECK(per_class(*f) == per_class(*m));
}
