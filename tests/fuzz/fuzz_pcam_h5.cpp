// libFuzzer target: the pcam_h5 dataset plugin opening a (damaged) HDF5 file as its x and y
// arrays, then reading a patch.
#include <cstddef>
#include <cstdint>
#include <string>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

#include "plugin_entry.hpp"
#include "scratch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& root = kgain::fuzz::scratch_directory();
  for (const char* part : {"x", "y"})
    kgain::fuzz::write_scratch_file(std::string("camelyonpatch_level_2_split_test_") + part + ".h5", data, size);
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
