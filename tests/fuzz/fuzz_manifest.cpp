// libFuzzer target: the manifest dataset plugin's CSV reader (the plugin's source is compiled
// in; its factory is called as the core would).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

#include "plugin_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string file = "/tmp/kgain-fuzz-manifest-" + std::to_string(::getpid()) + ".csv";
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  kgain::Options options("dataset", "/tmp");
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
