// Shared by the tests that create plugins from the build tree's plugin folder (include after
// test_support.hpp): one registry per test binary, the whole-slide images that
// tools/make_slides.py makes from ../shared and the safetensors weights, once per build tree.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include <kgain/core/registry.hpp>

namespace kgain::test {

inline const core::Registry& plugins() {
  static const core::Registry registry = [] {
    core::Registry r;
    r.add_directory(plugin_dir());
    return r;
  }();
  return registry;
}

// Needs libvips-tools and python3-tifffile (tools/test.sh installs them).
inline std::string generated_slides() {
  static const std::string dir = [] {
    const std::string d = std::string(KGAIN_TEST_OUTPUT_DIR) + "/slides";
    if (!std::filesystem::exists(d + "/no_resolution.tif")) {
      const std::string command = "/usr/bin/python3 " + std::string(KGAIN_SOURCE_DIR) + "/tools/make_slides.py " + d + " " + shared_dir();
      REQUIRE(std::system(command.c_str()) == 0);
    }
    return d;
  }();
  return dir;
}

// OUT/weights.safetensors (MobileNetV1 0.25's state dict, converted) and OUT/dtypes.safetensors,
// made once per build tree by tests/fixtures/backbones/make_safetensors.py (needs python3-torch).
inline std::string safetensors_fixtures() {
  static const std::string dir = [] {
    const std::string d = std::string(KGAIN_TEST_OUTPUT_DIR) + "/safetensors-fixtures";
    if (!std::filesystem::exists(d + "/dtypes.safetensors")) {
      const std::string command = "/usr/bin/python3 " + fixtures_dir() + "/backbones/make_safetensors.py " + models_dir() +
                                  "/mobilenet_v1_0.25_128_quant.state_dict.pt " + d;
      REQUIRE(std::system(command.c_str()) == 0);
    }
    return d;
  }();
  return dir;
}

}  // namespace kgain::test
