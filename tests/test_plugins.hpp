// Shared by the tests that create plugins from the build tree's plugin folder (include after
// test_support.hpp): one registry per test binary, the native backbone by architecture, and
// files made once per build tree: the whole-slide images that tools/make_slides.py makes from
// ../shared, the safetensors weights.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <kgain/backbone.hpp>
#include "plan/registry.hpp"

namespace kgain::test {

inline const core::Registry& plugins() {
  static const core::Registry registry = [] {
    core::Registry r;
    r.add_directory(plugin_dir());
    return r;
  }();
  return registry;
}

inline Options::List strings(const std::vector<std::string>& items) {
  return Options::List(items.begin(), items.end());
}

// The native backbone with `architecture` and the given options.
inline std::shared_ptr<Backbone> native_backbone(
    const std::string& architecture, const std::vector<std::pair<std::string, Options::Value>>& extra = {}) {
  Options options("backbone", "");
  options.set("architecture", architecture);
  for (const auto& [k, v] : extra) options.set(k, v);
  return plugins().create<Backbone>("native", options);
}

// Writes a state dict of zeros with the names and shapes of `shapes` ({"name": [sizes...]}) to
// `file`, as torch.save would: a weights file that fits exactly the architecture it came from.
// Each tensor is a view with strides 0 of a storage as long as its largest dimension (torch.save
// keeps views as they are), so the file of a 138 M-parameter VGG is kilobytes, not 550 MB: the
// loader still reads every name, shape and view, and copies every value (issue 33: this made the
// test of 18 architectures 230 s).
inline void write_zeros_state_dict(const std::string& file, const nlohmann::json& shapes) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, shape] : shapes.items()) {
    const auto sizes = shape.get<std::vector<std::int64_t>>();
    std::int64_t longest = 1;
    for (auto d : sizes) longest = std::max(longest, d);
    dict.insert(name, torch::zeros({longest}).as_strided(sizes, std::vector<std::int64_t>(sizes.size(), 0)));
  }
  const auto bytes = torch::pickle_save(c10::IValue(dict));
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// `dir`, made by `command(out)` (a fixture generator writing into `out`) unless `marker` (the last
// file it writes) is there. ctest runs test cases as parallel processes, and two of them may both
// find the fixtures missing: each generates into its own temporary folder, which is renamed into
// place, so no test ever reads a file another process is still writing (CI once read a slide
// while a second generator rewrote it).
inline std::string generated_once(const std::string& dir, const std::string& marker,
                                  const std::function<std::string(const std::string&)>& command) {
  namespace fs = std::filesystem;
  if (fs::exists(dir + "/" + marker)) return dir;
  // One generator at a time: a test that starts while another makes the same fixtures waits for
  // them instead of making a copy of its own (two did, each 20-25 s of both cores' time, in CI).
  // The kernel releases the lock when a holder dies; an interrupted generation is made again.
  const int lock = ::open((dir + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  REQUIRE(lock >= 0);
  REQUIRE(::flock(lock, LOCK_EX) == 0);
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  if (fs::exists(dir + "/" + marker)) return dir;  // made while this process waited
  const std::string scratch = dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(scratch);
  REQUIRE(std::system(command(scratch).c_str()) == 0);
  REQUIRE(fs::exists(scratch + "/" + marker));
  std::error_code error;
  fs::rename(scratch, dir, error);
  if (error && !fs::exists(dir + "/" + marker)) {  // a folder left by an older, interrupted build
    fs::remove_all(dir);
    fs::rename(scratch, dir);
  }
  fs::remove_all(scratch);  // another process won the race; its copy is the same
  return dir;
}

// Needs libvips-tools and python3-tifffile (tools/test.sh installs them).
inline std::string generated_slides() {
  static const std::string d = test_output_dir() + "/slides";
  static const std::string dir = generated_once(d, "no_resolution.tif", [](const std::string& out) {
    return "/usr/bin/python3 " + source_dir() + "/tools/make_slides.py " + out + " " + shared_dir();
  });
  return dir;
}

// OUT/weights.safetensors (MobileNetV1 0.25's state dict, converted) and OUT/dtypes.safetensors,
// made once per build tree by tests/fixtures/backbones/make_safetensors.py (needs python3-torch).
inline std::string safetensors_fixtures() {
  static const std::string d = test_output_dir() + "/safetensors-fixtures";
  static const std::string dir = generated_once(d, "dtypes.safetensors", [](const std::string& out) {
    return "/usr/bin/python3 " + fixtures_dir() + "/backbones/make_safetensors.py " + models_dir() +
           "/mobilenet_v1_0.25_128_quant.state_dict.pt " + out;
  });
  return dir;
}

}  // namespace kgain::test
