// Bundled defaults: the plugins the core falls back on when a config or a command names none.
//
// The core names no bundled plugin. Which probe a config without `[probe] plugin` gets, which
// metrics and transferability estimators are scored by default, and which backbone or dataset plugin
// `kgain inspect` and `kgain data` use for a bare file, name or folder come from
// plugins/defaults.toml, compiled in at build time.
// Threads: read-only after the first call; safe from any thread.
#pragma once

#include <string>
#include <vector>

namespace kgain::core {

// The string at [section] key, or "" when the bundle sets none.
std::string bundled_default(const std::string& section, const std::string& key);
// The array of strings at [section] key, or {} when the bundle sets none.
std::vector<std::string> bundled_default_list(const std::string& section, const std::string& key);

}  // namespace kgain::core
