// The plugin tables of a config ([dataset], [backbone], [probe], [metrics.<name>], ...): each
// key's value as a plugin option with its place, the `plugin` and `name` keys, the core's own keys
// inside them, and the table written back into the resolved config (internal to config/).
// Threads: one loader per thread.
#pragma once

#include <cstdint>
#include <string>

#include <toml++/toml.h>

#include "config/config.hpp"
#include "config/section_reader.hpp"

namespace kgain::core::config_parts {

// A plugin table: `plugin` names the plugin (else `default_plugin`; none is an error), `name`
// labels it in results; the other keys are the plugin's options, relative paths taken from
// `base_dir` (the core's own keys among them are read by the caller and marked read).
PluginSection plugin_section(const toml::table& table, const std::string& section, const std::string& file,
                             const std::string& base_dir, const std::string& default_plugin);

// The table `key` of `root`, or nullptr; a key that is not a table is an error.
const toml::table* table_of(const toml::table& root, const std::string& key, const std::string& file);

// Writes one plugin section back with its values (for the resolved config).
toml::table options_table(const PluginSection& s);

// A top-level plugin table ([dataset], [backbone], [probe]): `plugin` and `name` are core keys.
PluginSection core_plugin_table(const toml::table* table, const std::string& section, const std::string& file,
                                const std::string& base_dir, const std::string& default_plugin, ConfigRecord& record);

// A core key inside a plugin table ([dataset] on_bad_image, [probe] seed): read from the
// plugin's options, so that it is not reported as unknown to the plugin.
std::int64_t core_option(PluginSection& s, const std::string& key, std::int64_t fallback, ConfigRecord& record);
std::string core_option(PluginSection& s, const std::string& key, const std::string& fallback, ConfigRecord& record);

}  // namespace kgain::core::config_parts
