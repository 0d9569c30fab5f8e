// The docs say what the code does: the config reference lists exactly the keys the loader reads.
#include "test_support.hpp"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <kgain/core/config.hpp>

TEST_CASE("docs/config.md lists every core key, and only those", "[docs][config]") {
  std::ifstream in(std::string(KGAIN_SOURCE_DIR) + "/docs/config.md");
  REQUIRE(in);
  std::set<std::string> documented;
  std::string line;
  bool in_core_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("| section | key |", 0) == 0) in_core_table = true;
    else if (in_core_table && line.rfind("|", 0) != 0) break;
    else if (in_core_table && line.rfind("|---", 0) != 0) {
      std::stringstream ss(line.substr(1));
      std::string section, key;
      std::getline(ss, section, '|');
      std::getline(ss, key, '|');
      const auto trim = [](std::string s) { return s.substr(s.find_first_not_of(' '), s.find_last_not_of(' ') - s.find_first_not_of(' ') + 1); };
      documented.insert(trim(section) + "." + trim(key));
    }
  }
  const auto config = kgain::core::parse_config("[dataset]\nplugin = \"manifest\"\n[backbone]\nplugin = \"torchscript\"\n", "x.toml");
  const std::set<std::string> known(config.known_keys.begin(), config.known_keys.end());
  for (const auto& k : known) {
    INFO("the loader reads " << k << " but docs/config.md does not list it");
    CHECK(documented.count(k) == 1);
  }
  for (const auto& k : documented) {
    INFO("docs/config.md lists " << k << " but the loader does not read it");
    CHECK(known.count(k) == 1);
  }
}

// ctest learns the test names from Catch2 (catch_discover_tests) and splits them at ';', a CMake
// list separator: a name with ';' becomes two filters that match nothing, and Catch2 v2 exits 0
// when nothing matches, so the test never runs yet "passes". Two tests were lost that way.
TEST_CASE("No test name holds a semicolon (ctest would split it into filters that run nothing)", "[docs]") {
  std::size_t names = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(KGAIN_SOURCE_DIR) + "/tests")) {
    if (entry.path().extension() != ".cpp") continue;
    std::istringstream text(kgain::test::slurp(entry.path().string()));
    std::string line;
    while (std::getline(text, line)) {
      const auto start = line.find("TEST_CASE(\"");
      if (start == std::string::npos) continue;
      const std::string name = line.substr(start + 11, line.find('"', start + 11) - start - 11);
      ++names;
      INFO(entry.path().filename().string() << ": " << name);
      CHECK(name.find(';') == std::string::npos);
    }
  }
  CHECK(names > 90);
}
