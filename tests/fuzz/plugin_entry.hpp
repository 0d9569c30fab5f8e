// For fuzz targets that compile a plugin's source in: its entry point, as the core sees it.
#pragma once

#include <memory>

#include <kgain/plugin.hpp>

namespace kgain_entry {
const kgain::LibraryManifest* library_manifest();  // defined by the plugin's KGAIN_LIBRARY
}

namespace kgain::fuzz {
// Creates the library's first plugin from `options`, as the registry would.
inline std::unique_ptr<Plugin> create_first_plugin(const Options& options) {
  return std::unique_ptr<Plugin>(kgain_entry::library_manifest()->plugins[0].create(options));
}
}  // namespace kgain::fuzz
