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
inline std::string shared_dir() { return KGAIN_SHARED_DIR; }
inline std::string data_dir() { return shared_dir() + "/data"; }
inline std::string models_dir() { return shared_dir() + "/models"; }
inline std::string fixtures_dir() { return KGAIN_TEST_FIXTURES; }
inline std::string fixture_plugin_dir(const std::string& name) {
  return std::string(KGAIN_FIXTURE_PLUGIN_DIR) + "/" + name;
}
inline std::string plugin_dir() { return KGAIN_PLUGIN_DIR; }

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
