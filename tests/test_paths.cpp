// The build tree's paths, compiled into this unit alone (tests/CMakeLists.txt): a sanitizer build
// links the release tree's other test objects with its own copy of this one (docs/ci.md).
#include <string>

namespace kgain::test {
std::string shared_dir() { return KGAIN_SHARED_DIR; }
std::string fixtures_dir() { return KGAIN_TEST_FIXTURES; }
std::string source_dir() { return KGAIN_SOURCE_DIR; }
std::string plugin_dir() { return KGAIN_PLUGIN_DIR; }
std::string test_output_dir() { return KGAIN_TEST_OUTPUT_DIR; }
std::string kgain_binary() { return KGAIN_BINARY; }
std::string fixture_plugin_dir(const std::string& name) { return std::string(KGAIN_FIXTURE_PLUGIN_DIR) + "/" + name; }
}  // namespace kgain::test
