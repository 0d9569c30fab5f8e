// Plugin options declared once (issue 35): a declaration checks what a config writes before the
// plugin is made, gives the getters their defaults, and is what `kgain list --options` prints.
#include "test_support.hpp"

#include <array>
#include <cstdio>
#include <set>

#include <sys/wait.h>

#include "config/config.hpp"
#include "plan/option_table.hpp"
#include "plan/registry.hpp"

using Catch::Matchers::Contains;
using namespace kgain;
using namespace kgain::core;

namespace {

Registry bundled() {
  Registry registry;
  registry.add_directory(test::plugin_dir());
  return registry;
}

// The options of one table, each written at "study.toml:<n>:1".
Options written(const std::string& section, const std::vector<std::pair<std::string, Options::Value>>& values) {
  Options o(section, "");
  int line = 1;
  for (const auto& [key, value] : values) o.set(key, value, "study.toml:" + std::to_string(++line) + ":1");
  return o;
}

// What a command prints on standard output, and its exit status.
std::pair<int, std::string> run_command(const std::string& command) {
  std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}

}  // namespace

TEST_CASE("A declared option is checked before the plugin is made: range, choices and element types, with the place",
          "[options][registry]") {
  const Registry registry = bundled();
  CHECK_THROWS_WITH(registry.create<Probe>("knn", written("probe", {{"k", std::int64_t{0}}})),
                    Contains("study.toml:2:1: [probe] k: must be positive (received 0)"));
  CHECK_THROWS_WITH(registry.create<Probe>("knn", written("probe", {{"distance", std::string("manhattan")}})),
                    Contains("study.toml:2:1") && Contains("distance: must be \"euclidean\" or \"cosine\"") &&
                        Contains("(received \"manhattan\")"));
  CHECK_THROWS_WITH(
      registry.create<Probe>("logistic", written("probe", {{"C_grid", Options::List{1.0, std::string("x")}}})),
      Contains("C_grid: expected an array of numbers, found an array"));
  CHECK_THROWS_WITH(registry.create<Probe>("logistic", written("probe", {{"tol", std::nan("")}})),
                    Contains("tol: must be a number (received nan)"));
  CHECK_THROWS_WITH(registry.create<Probe>("logistic", written("probe", {{"inner_folds", std::int64_t{1}}})),
                    Contains("inner_folds: must be at least 2 (received 1)"));
  // A string-or-integer option: the string must be a choice, the integer in range.
  const std::string slides = test::data_dir();
  CHECK_THROWS_WITH(
      registry.create<Dataset>(
          "wsi",
          written("dataset", {{"slides", slides}, {"target_mpp", 0.5}, {"tissue_threshold", std::int64_t{300}}})),
      Contains("study.toml:4:1") && Contains("tissue_threshold: must be \"otsu\" or 0 to 255 (received 300)"));
  CHECK_THROWS_WITH(
      registry.create<Dataset>(
          "wsi",
          written("dataset", {{"slides", slides}, {"target_mpp", 0.5}, {"tissue_threshold", std::string("auto")}})),
      Contains("tissue_threshold: must be \"otsu\" or 0 to 255 (received \"auto\")"));
  // An element of a list of strings must be one of the choices.
  CHECK_THROWS_WITH(
      registry.create<Dataset>("pcam_h5",
                               written("dataset", {{"root", slides}, {"splits", Options::List{"train", "tset"}}})),
      Contains("study.toml:3:1") && Contains("splits: every element must be \"train\", \"valid\" or \"test\""));
}

TEST_CASE("The getters without a fallback return the declared default, and an undeclared read is the plugin's bug",
          "[options]") {
  static constexpr std::array declared{
      option::number("C", "1.5", "strength").positive(),
      option::strings("extensions", "[\".png\", \".jpg\"]", "endings"),
      option::integers("sizes", "[1, 2, 3]", "sizes").at_least(1),
      option::string("solver", "\"auto\"", "solver").one_of("auto|lbfgs"),
      option::boolean("standardize", "true", "z-score"),
      option::integer("k", nullptr, "computed").computed("from the data"),
  };
  Options o("probe", "/base");
  o.set("solver", std::string("lbfgs"), "x.toml:3:1");
  o.declare(declared.data(), declared.size());
  CHECK(o.get_double("C") == 1.5);
  CHECK(o.get_string_list("extensions") == std::vector<std::string>{".png", ".jpg"});
  CHECK(o.get_int_list("sizes") == std::vector<std::int64_t>{1, 2, 3});
  CHECK(o.get_string("solver") == "lbfgs");  // the written value, not the default
  CHECK(o.get_bool("standardize"));
  CHECK(o.get_int("k", 7) == 7);                          // a computed default: the plugin's fallback
  CHECK_THROWS_AS(o.get_int("k"), std::logic_error);      // ... which it must give
  CHECK_THROWS_AS(o.get_int("kk", 1), std::logic_error);  // a key it does not declare
  CHECK(o.unread_keys().empty());
  CHECK(o.declared_names() == std::vector<std::string>{"C", "extensions", "sizes", "solver", "standardize", "k"});

  Options bad("probe", "");
  bad.set("solver", std::string("newton"), "x.toml:4:2");
  CHECK_THROWS_WITH(bad.declare(declared.data(), declared.size()),
                    Contains("x.toml:4:2: [probe] solver: must be \"auto\" or \"lbfgs\" (received \"newton\")"));
  bad.set("solver", std::string("auto|lbfgs"), "x.toml:4:2");  // two choices are not one
  CHECK_THROWS_WITH(bad.declare(declared.data(), declared.size()), Contains("(received \"auto|lbfgs\")"));
  bad.set("solver", std::string("aut"), "x.toml:4:2");  // nor is a part of one
  CHECK_THROWS_WITH(bad.declare(declared.data(), declared.size()), Contains("(received \"aut\")"));
  bad.set("solver", std::int64_t{3}, "x.toml:4:2");
  CHECK_THROWS_WITH(bad.declare(declared.data(), declared.size()),
                    Contains("solver: expected a string, found the integer 3"));
}

TEST_CASE("Every bundled plugin declares its options, and every declared default is a value it accepts",
          "[options][registry]") {
  const Registry registry = bundled();
  std::size_t plugins = 0, options = 0, literal_defaults = 0;
  for (const auto& p : registry.plugins()) {
    INFO(to_string(p.info.kind) << " " << p.info.name << " (" << p.library_path << ")");
    REQUIRE(p.info.declares_options);
    ++plugins;
    std::set<std::string> names;
    for (std::size_t i = 0; i < p.info.option_count; ++i) {
      const OptionSpec& spec = p.info.options[i];
      INFO("option " << spec.name);
      CHECK(names.insert(spec.name).second);
      CHECK(std::string(spec.meaning).size() > 5);
      CHECK(!default_text(spec).empty());  // a literal, a note, or "(required)": docs always say something
      ++options;
      if (!spec.default_value) continue;
      ++literal_defaults;
      Options o(p.info.name, "");
      o.set(spec.name, declared_default(spec), "declared");
      CHECK_NOTHROW(o.declare(p.info.options, p.info.option_count));
    }
  }
  CHECK(plugins >= 20);
  CHECK(options >= 60);
  CHECK(literal_defaults >= 30);
}

TEST_CASE("A key a plugin does not declare is unknown, with the declared names as suggestions",
          "[options][registry][config]") {
  const Config c = parse_config(
      "[dataset]\nplugin = \"manifest\"\n[backbone]\nplugin = \"t\"\n[probe]\nplugin = \"knn\"\ndistanse = "
      "\"cosine\"\n",
      "study.toml");
  const Registry registry = bundled();
  CHECK_THROWS_WITH(registry.create<Probe>(c.probes[0]),
                    Contains("study.toml:7:1") && Contains("unknown key 'distanse'") &&
                        Contains("did you mean 'distance'?") && Contains("Its options: k, distance, standardize."));
}

TEST_CASE("kgain list --options prints a plugin's declaration, and an unknown name lists the plugins",
          "[options][cli]") {
  const auto [status, out] = run_command(test::kgain_binary() + " list --options logistic");
  CHECK(status == 0);
  CHECK_THAT(out, Contains("probe logistic"));
  CHECK_THAT(out, Contains("C_grid") && Contains("array of numbers, positive") && Contains("default []"));
  CHECK_THAT(out, Contains("inner_folds") && Contains("integer, at least 2") && Contains("default 3"));
  CHECK_THAT(out,
             Contains("solver") && Contains("string: `auto`, `newton` or `lbfgs`") && Contains("default \"auto\""));
  const auto [unknown_status, unknown] = run_command(test::kgain_binary() + " list --options logistc");
  CHECK(unknown_status != 0);
  CHECK_THAT(unknown, Contains("no plugin is called 'logistc'") && Contains("logistic"));
}
