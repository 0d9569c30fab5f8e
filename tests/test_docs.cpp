// The docs say what the code does: the config reference lists exactly the keys the loader reads.
#include "test_support.hpp"
#include "test_plugins.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <fstream>
#include <set>
#include <sstream>

#include "config/config.hpp"
#include "plan/option_table.hpp"
#include "plan/registry.hpp"
#include <toml++/toml.h>

namespace {

// The rows of docs/config.md's core key table: "section.key" -> the default column.
std::map<std::string, std::string> documented_core_keys() {
  std::ifstream in(kgain::test::source_dir() + "/docs/config.md");
  REQUIRE(in);
  std::map<std::string, std::string> documented;
  std::string line;
  bool in_core_table = false;
  const auto trim = [](std::string s) {
    return s.substr(s.find_first_not_of(' '), s.find_last_not_of(' ') - s.find_first_not_of(' ') + 1);
  };
  while (std::getline(in, line)) {
    if (line.rfind("| section | key |", 0) == 0)
      in_core_table = true;
    else if (in_core_table && line.rfind("|", 0) != 0)
      break;
    else if (in_core_table && line.rfind("|---", 0) != 0) {
      std::stringstream ss(line.substr(1));
      std::string section, key, type, fallback;
      std::getline(ss, section, '|');
      std::getline(ss, key, '|');
      std::getline(ss, type, '|');
      std::getline(ss, fallback, '|');
      documented[trim(section) + "." + trim(key)] = trim(fallback);
    }
  }
  return documented;
}

// A default written as TOML ("32", "\"auto\"", "[0, 1, 2]"), or nullopt for prose ("the file's stem").
std::optional<toml::table> as_toml_value(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    return toml::parse("v = " + text);
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

bool same_value(const toml::node& a, const toml::node& b) {
  if (a.is_number() && b.is_number()) return a.value<double>() == b.value<double>();
  const auto text = [](const toml::node& n) {
    std::ostringstream out;
    n.visit([&](const auto& v) { out << v; });
    return out.str();
  };
  return text(a) == text(b);
}

}  // namespace

TEST_CASE("docs/config.md lists every core key with the loader's default, and only those keys", "[docs][config]") {
  const auto documented = documented_core_keys();
  const auto config =
      kgain::core::parse_config("[dataset]\nplugin = \"manifest\"\n[backbone]\nplugin = \"torchscript\"\n", "x.toml");
  const std::set<std::string> known(config.known_keys.begin(), config.known_keys.end());
  CHECK(known.size() > 30);
  for (const auto& k : known) {
    INFO("the loader reads " << k << " but docs/config.md does not list it");
    CHECK(documented.count(k) == 1);
  }
  std::size_t literal_defaults = 0;
  for (const auto& [key, fallback] : documented) {
    INFO("docs/config.md lists " << key << " (default " << fallback << ")");
    REQUIRE(known.count(key) == 1);
    const auto in_docs = as_toml_value(fallback);
    const auto in_loader = as_toml_value(config.key_defaults.at(key));
    // A prose default in the docs ("the file's stem") is one the loader computes, and the other way round.
    REQUIRE(in_docs.has_value() == in_loader.has_value());
    if (!in_docs) continue;
    ++literal_defaults;
    INFO("the loader's default is " << config.key_defaults.at(key));
    CHECK(same_value(*(*in_docs)["v"].node(), *(*in_loader)["v"].node()));
  }
  CHECK(literal_defaults > 25);
}

// The plugin key table is written by `kgain list --markdown` from the plugins' declarations: a
// declared option missing from the docs, or a default that differs, fails here.
TEST_CASE("docs/config.md's plugin key table is what the bundled plugins declare", "[docs][options]") {
  kgain::core::Registry registry;
  registry.add_directory(kgain::test::plugin_dir());
  const std::string declared = kgain::core::option_table_markdown(registry);
  std::string documented;
  bool in_table = false;
  for (const auto& line : kgain::test::lines(kgain::test::slurp(kgain::test::source_dir() + "/docs/config.md"))) {
    if (line.rfind("| plugin | key |", 0) == 0)
      in_table = true;
    else if (in_table && line.rfind("|", 0) != 0)
      break;
    else if (in_table && line.rfind("|---", 0) != 0)
      documented += line + "\n";
  }
  REQUIRE(declared.size() > 2000);
  const auto declared_lines = kgain::test::lines(declared), documented_lines = kgain::test::lines(documented);
  for (std::size_t i = 0; i < std::max(declared_lines.size(), documented_lines.size()); ++i) {
    INFO("regenerate the table with `kgain list --markdown`");
    INFO("declared:   " << (i < declared_lines.size() ? declared_lines[i] : "(nothing)"));
    INFO("documented: " << (i < documented_lines.size() ? documented_lines[i] : "(nothing)"));
    REQUIRE((i < declared_lines.size() && i < documented_lines.size() && declared_lines[i] == documented_lines[i]));
  }
}

// ctest learns the test names from Catch2 (catch_discover_tests) and splits them at ';', a CMake
// list separator: a name with ';' becomes two filters that match nothing, and Catch2 v2 exits 0
// when nothing matches, so the test never runs yet "passes". Two tests were lost that way.
TEST_CASE("No test name holds a semicolon (ctest would split it into filters that run nothing)", "[docs]") {
  std::size_t names = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kgain::test::source_dir() + "/tests")) {
    if (entry.path().extension() != ".cpp") continue;
    const std::string text = kgain::test::slurp(entry.path().string());
    // The name: the string literals after "TEST_CASE(", which clang-format may put on the next
    // line and split over several ("a" "b" is "ab").
    for (auto at = text.find("TEST_CASE("); at != std::string::npos; at = text.find("TEST_CASE(", at + 1)) {
      if (at != 0 && text[at - 1] != '\n') continue;  // a test starts a line; this is a mention
      std::string name;
      std::size_t p = at + 10;
      while (true) {
        p = text.find_first_not_of(" \n", p);
        if (p == std::string::npos || text[p] != '"') break;
        const auto end = text.find('"', p + 1);
        name += text.substr(p + 1, end - p - 1);
        p = end + 1;
      }
      if (name.empty()) continue;  // a macro's definition
      ++names;
      INFO(entry.path().filename().string() << ": " << name);
      CHECK(name.find(';') == std::string::npos);
    }
  }
  CHECK(names > 90);
}

// The core falls back on bundled plugins only through plugins/defaults.toml (compiled in): its
// sources name none of them, so a build bundling other plugins changes that file alone.
TEST_CASE("No source file of the core names a bundled plugin", "[docs][plugins]") {
  std::set<std::string> names;
  for (const auto& plugin : kgain::test::plugins().plugins()) names.insert(plugin.info.name);
  REQUIRE(names.count("logistic") == 1);
  REQUIRE(names.count("torchscript") == 1);
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(kgain::test::source_dir() + "/core")) {
    const auto ext = entry.path().extension();
    if (ext != ".cpp" && ext != ".hpp" && ext != ".in") continue;
    ++files;
    const std::string text = kgain::test::slurp(entry.path().string());
    for (const auto& name : names) {
      INFO(entry.path().string() << " names the bundled plugin \"" << name << "\" (move it to plugins/defaults.toml)");
      CHECK(text.find("\"" + name + "\"") == std::string::npos);
      CHECK(text.find("\\\"" + name + "\\\"") == std::string::npos);  // inside a message: \"name\"
    }
  }
  CHECK(files > 40);
}
