#include "config/plugin_tables.hpp"

#include <cmath>

namespace kgain::core::config_parts {
namespace {

// A plugin option that is nan or inf is always a mistake, and a plugin that compares it
// against a range would let it through (every comparison with NaN is false).
double finite_number(const toml::node& node, const std::string& file, const std::string& section,
                     const std::string& key) {
  const double v = node.as_floating_point()->get();
  if (!std::isfinite(v))
    throw ConfigError(where(file, node.source()) + ": [" + section + "] " + key +
                      ": must be a finite number (received " + std::to_string(v) + ")");
  return v;
}

Options::Value to_value(const toml::node& node, const std::string& file, const std::string& section,
                        const std::string& key) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return i->get();
  if (node.is_floating_point()) return finite_number(node, file, section, key);
  if (auto b = node.as_boolean()) return b->get();
  if (auto a = node.as_array()) {
    Options::List list;
    for (const auto& item : *a) {
      if (auto s = item.as_string())
        list.emplace_back(s->get());
      else if (auto i = item.as_integer())
        list.emplace_back(i->get());
      else if (item.is_floating_point())
        list.emplace_back(finite_number(item, file, section, key));
      else if (auto b = item.as_boolean())
        list.emplace_back(b->get());
      else
        throw ConfigError(where(file, item.source()) + ": [" + section + "] " + key +
                          ": arrays of plugin options hold strings, numbers or booleans, found " + type_name(item));
    }
    return list;
  }
  throw ConfigError(where(file, node.source()) + ": [" + section + "] " + key +
                    ": plugin options are strings, numbers, booleans or arrays, found " + type_name(node));
}

}  // namespace

PluginSection plugin_section(const toml::table& table, const std::string& section, const std::string& file,
                             const std::string& base_dir, const std::string& default_plugin) {
  PluginSection out;
  out.where = where(file, table.source());
  out.options = Options(section, base_dir);
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    if (node.is_table()) continue;  // sub-tables are handled by the caller ([metrics.<name>])
    out.options.set(k, to_value(node, file, section, k), where(file, key.source()));
  }
  if (const auto* p = table.get("plugin")) {
    if (!p->is_string())
      throw ConfigError(where(file, p->source()) + ": [" + section + "] plugin: expected a string, found " +
                        type_name(*p));
    out.plugin = p->as_string()->get();
  } else if (!default_plugin.empty()) {
    out.plugin = default_plugin;
  } else {
    throw ConfigError(out.where + ": [" + section + "] has no 'plugin' key: name the " + section +
                      " plugin to use (see 'kgain list'), e.g. plugin = \"...\"");
  }
  out.options.mark("plugin");
  out.name = out.options.get_string("name", out.plugin);
  return out;
}

const toml::table* table_of(const toml::table& root, const std::string& key, const std::string& file) {
  const toml::node* n = root.get(key);
  if (!n) return nullptr;
  if (!n->is_table())
    throw ConfigError(where(file, n->source()) + ": '" + key + "' must be a table ([" + key + "]), found " +
                      type_name(*n));
  return n->as_table();
}

toml::table options_table(const PluginSection& s) {
  toml::table t;
  t.insert("plugin", s.plugin);
  for (const auto& entry : s.options.values()) {
    const std::string& key = entry.first;  // not a structured binding: lambdas cannot capture those in C++17
    const auto& value = entry.second;
    if (key == "plugin") continue;
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, Options::List>) {
            toml::array a;
            for (const auto& item : v) std::visit([&](const auto& x) { a.push_back(x); }, item);
            t.insert(key, a);
          } else {
            t.insert(key, v);
          }
        },
        value);
  }
  return t;
}

PluginSection core_plugin_table(const toml::table* table, const std::string& section, const std::string& file,
                                const std::string& base_dir, const std::string& default_plugin, ConfigRecord& record) {
  static const toml::table empty;
  record.note(section, "plugin", default_plugin.empty() ? "" : toml_text(default_plugin));
  record.note(section, "name", "");  // default: the plugin's name
  return plugin_section(table ? *table : empty, section, file, base_dir, default_plugin);
}

std::int64_t core_option(PluginSection& s, const std::string& key, std::int64_t fallback, ConfigRecord& record) {
  record.note(s.options.section(), key, toml_text(fallback));
  return s.options.get_int(key, fallback);
}
std::string core_option(PluginSection& s, const std::string& key, const std::string& fallback, ConfigRecord& record) {
  record.note(s.options.section(), key, toml_text(fallback));
  return s.options.get_string(key, fallback);
}

}  // namespace kgain::core::config_parts

namespace kgain::core {

void check_unread_options(const PluginSection& section, const std::string& kind) {
  const auto unread = section.options.unread_keys();
  if (unread.empty()) return;
  // The keys the plugin declares (else those it asked for, present or not) are the candidates
  // for a typo.
  const bool declared = section.options.declared();
  const std::vector<std::string> candidates = declared ? section.options.declared_names() : section.options.read_keys();
  const std::string& key = unread.front();
  std::string msg = section.options.where(key) + ": [" + section.options.section() + "] unknown key '" + key +
                    "' for " + kind + " plugin '" + section.plugin + "'";
  if (const auto guess = closest(key, candidates); !guess.empty()) msg += "; did you mean '" + guess + "'?";
  std::string list;
  for (const auto& k : candidates) list += (list.empty() ? "" : ", ") + k;
  if (candidates.empty()) throw ConfigError(msg + " It has no options.");
  throw ConfigError(msg + (declared ? " Its options: " : " Keys it reads: ") + list + ".");
}

}  // namespace kgain::core
