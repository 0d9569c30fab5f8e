// libFuzzer target: the manifest dataset plugin's CSV reader (the plugin's source is compiled
// in; its factory is called as the core would).
#include <cstddef>
#include <cstdint>
#include <string>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

#include "plugin_entry.hpp"
#include "scratch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string file = kgain::fuzz::write_scratch_file("manifest.csv", data, size);
  kgain::Options options("dataset", kgain::fuzz::scratch_directory());
  options.set("file", std::string(file), "fuzz");
  try {
    auto plugin = kgain::fuzz::create_first_plugin(options);
    const auto* dataset = dynamic_cast<const kgain::Dataset*>(plugin.get());
    for (const auto& s : dataset->samples())
      if (s.label < 0 || s.label >= static_cast<int>(dataset->class_names().size())) __builtin_trap();
  } catch (const std::exception&) {
  }
  return 0;
}
