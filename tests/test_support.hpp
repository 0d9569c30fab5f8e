// Include this first in every test file: LibTorch pulls in glog, whose CHECK macro would
// silently replace Catch2's, so torch comes first and its CHECK is removed before Catch2.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <string>

namespace kgain::test {
inline std::string shared_dir() { return KGAIN_SHARED_DIR; }
inline std::string data_dir() { return shared_dir() + "/data"; }
inline std::string models_dir() { return shared_dir() + "/models"; }
inline std::string fixtures_dir() { return KGAIN_TEST_FIXTURES; }
inline std::string fixture_plugin_dir(const std::string& name) { return std::string(KGAIN_FIXTURE_PLUGIN_DIR) + "/" + name; }
inline std::string plugin_dir() { return KGAIN_PLUGIN_DIR; }
}  // namespace kgain::test
