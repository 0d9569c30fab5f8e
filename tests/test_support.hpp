// Include this first in every test file: LibTorch pulls in glog, whose CHECK macro would
// silently replace Catch2's, so torch comes first and its CHECK is removed before Catch2.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kgain::test {
// Where the tests find the source tree, ../shared, the build tree's plugins and binaries: set by
// the build in test_paths.cpp alone, so the other test units hold no path of their build tree
// and a second build tree (the sanitizers') can link the first one's test objects (docs/ci.md).
std::string shared_dir();
std::string fixtures_dir();     // tests/fixtures
std::string source_dir();       // the repository
std::string plugin_dir();       // the build tree's bundled plugins
std::string test_output_dir();  // the build tree's tests/ folder, where fixtures are made once
std::string kgain_binary();     // the build tree's kgain executable
std::string fixture_plugin_dir(const std::string& name);
inline std::string data_dir() { return shared_dir() + "/data"; }
inline std::string models_dir() { return shared_dir() + "/models"; }

// A whole file as text (empty when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string l;
  while (std::getline(ss, l)) out.push_back(l);
  return out;
}
}  // namespace kgain::test
