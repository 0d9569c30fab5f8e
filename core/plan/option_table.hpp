// The options a plugin declares (kgain/option_spec.hpp), written for people: `kgain list
// --options NAME` prints them as text, `--markdown` as the rows of docs/config.md's plugin key
// table, which the docs test compares with the file.
// Threads: pure functions of the registry's manifests.
#pragma once

#include <string>

#include "plan/registry.hpp"

namespace kgain::core {

// Every plugin called `name` (of any kind) with its declared options, one line per option;
// throws RegistryError listing the plugins when none is called so.
std::string option_table_text(const Registry& registry, const std::string& name);

// docs/config.md's rows for the plugins of `registry` that declare options, in the order of the
// table: datasets, backbones, probes, metrics, transferability estimators; each by name.
std::string option_table_markdown(const Registry& registry);

// The default column of one option: its TOML default, its note, or both ("1e-6 (Hugging Face
// keys: 1e-12)").
std::string default_text(const OptionSpec& spec);

}  // namespace kgain::core
