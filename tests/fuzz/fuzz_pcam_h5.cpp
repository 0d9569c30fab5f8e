// libFuzzer target: the pcam_h5 dataset plugin opening a (damaged) HDF5 file as its x and y
// arrays, then reading a patch.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

#include "plugin_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string root = "/tmp/kgain-fuzz-pcam-" + std::to_string(::getpid());
  std::filesystem::create_directories(root);
  for (const char* part : {"x", "y"})
    std::ofstream(root + "/camelyonpatch_level_2_split_test_" + part + ".h5", std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  kgain::Options options("dataset", root);
  options.set("root", root, "fuzz");
  try {
    auto plugin = kgain::fuzz::create_first_plugin(options);
    const auto* dataset = dynamic_cast<const kgain::Dataset*>(plugin.get());
    const auto samples = dataset->samples();
    kgain::RgbImage image;
    if (!samples.empty()) dataset->read_pixels(samples.front(), image);
  } catch (const std::exception&) {
  }
  return 0;
}
