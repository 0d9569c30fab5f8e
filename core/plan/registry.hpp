// Registry: finds plugin libraries on disk, checks them, and creates plugins by kind and name.
//
// Each `.so` in the search directories is opened with Boost.DLL and asked for its manifest
// (the `kgain_library` entry point). A library is refused, with the reason recorded, when it has
// no entry point, was built for another kgain ABI, another LibTorch or another C++ library ABI.
// Refused libraries never stop the others from loading; they are listed by `kgain list` and in
// the error for a plugin that cannot be found, since a refused library is the usual reason.
//
// Libraries are never unloaded while the registry lives, and every plugin it creates holds its
// library too: code and vtables of a plugin must outlive the objects it made.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <kgain/backbone.hpp>
#include <kgain/dataset.hpp>
#include <kgain/feature_metric.hpp>
#include <kgain/metric.hpp>
#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>

#include "config/config.hpp"

namespace boost::dll {
class shared_library;
}

namespace kgain::core {

class RegistryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PluginEntry {
  PluginInfo info;
  std::string library_path;
  std::string library_name;
  std::shared_ptr<boost::dll::shared_library> library;
};

struct RefusedLibrary {
  std::string path;
  std::string reason;
};

// What is wrong with a manifest, as whole sentences; empty when the library is compatible.
std::string check_manifest(const LibraryManifest& manifest);

class Registry {
 public:
  Registry() = default;

  // Loads every kgain library in `directory` (not recursive). A missing directory is ignored.
  void add_directory(const std::string& directory);
  // Loads one library; throws RegistryError with the reason when it cannot be used.
  void add_library(const std::string& path);

  // The directories searched by default: $KGAIN_PLUGIN_PATH (colon-separated), the plugin
  // folder of the build tree this binary belongs to, and <prefix>/lib/kgain/plugins.
  static std::vector<std::string> default_directories();

  const std::vector<PluginEntry>& plugins() const { return plugins_; }
  const std::vector<RefusedLibrary>& refused() const { return refused_; }

  // The plugin of that kind and name; throws RegistryError listing the available ones (and the
  // refused libraries) when there is none.
  const PluginEntry& find(PluginKind kind, const std::string& name) const;

  // Creates the plugin `name` of the kind that Interface is (Backbone, Dataset, Probe, Metric or
  // FeatureMetric): the kind comes from the type, so the two cannot disagree. Throws
  // RegistryError naming the plugin and its library when the factory throws, and OptionError
  // (from the plugin) for bad options.
  template <class Interface>
  std::shared_ptr<Interface> create(const std::string& name, const Options& options) const {
    const PluginEntry& entry = find(kgain::detail::kind_of<Interface>(), name);
    Plugin* raw = create_raw(entry, options);
    auto library = entry.library;
    return std::shared_ptr<Interface>(static_cast<Interface*>(raw), [library](Interface* p) { delete p; });
  }

  // Creates the plugin a config table names, then reports the table's keys that the plugin did
  // not read as unknown (ConfigError naming file:line:col and the closest key it reads). Every
  // command creates plugins this way, so that a typo in a plugin's table never passes.
  template <class Interface>
  std::shared_ptr<Interface> create(const PluginSection& section) const {
    auto object = create<Interface>(section.plugin, section.options);
    std::string kind = to_string(kgain::detail::kind_of<Interface>());
    std::replace(kind.begin(), kind.end(), '_', ' ');
    check_unread_options(section, kind);
    return object;
  }

 private:
  Plugin* create_raw(const PluginEntry& entry, const Options& options) const;
  void load(const std::string& path, bool explicit_request);

  std::vector<std::string> loaded_paths_;
  std::vector<PluginEntry> plugins_;
  std::vector<RefusedLibrary> refused_;
};

}  // namespace kgain::core

namespace kgain::core {
// A registry that has searched `extra_directories` first, then Registry::default_directories().
Registry load_registry(const std::vector<std::string>& extra_directories);
}  // namespace kgain::core
