// How the config loader reads TOML (internal to config/): places as "file:line:col", type names
// for messages, the record of every core key with the value it took and its default (from which
// the resolved config, the known-key list and the docs test are made), and SectionReader, which
// reads one core section's keys with their types and ranges and reports the unknown ones.
// Threads: one loader per thread.
#pragma once

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.hpp"

namespace kgain::core::config_parts {

inline std::string where(const std::string& file, const toml::source_region& src) {
  return file + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

inline std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// Everything the loader read: the resolved config (each core key with the value it took, from
// the file or by default) and, per key, its default. The resolved config and the known-key list
// are made from this record, so a key is written once, where it is read.
class ConfigRecord {
 public:
  explicit ConfigRecord(Config& config) : config_(config) {}

  toml::table& section(const std::string& name) {
    if (!resolved_.contains(name)) resolved_.insert(name, toml::table{});
    return *resolved_[name].as_table();
  }
  void set_section(const std::string& name, toml::node&& value) { resolved_.insert_or_assign(name, std::move(value)); }
  // A core key: `default_text` is its default as TOML, or empty when it is computed or required.
  void note(const std::string& section, const std::string& key, const std::string& default_text) {
    const std::string name = section + "." + key;
    if (config_.key_defaults.insert_or_assign(name, default_text).second) config_.known_keys.push_back(name);
  }
  std::string text() const {
    std::ostringstream out;
    out << resolved_;
    return out.str();
  }

 private:
  Config& config_;
  toml::table resolved_;
};

inline toml::array to_toml(const std::vector<std::string>& values) {
  toml::array a;
  for (const auto& v : values) a.push_back(v);
  return a;
}
inline toml::array to_toml(const std::vector<std::uint64_t>& values) {
  toml::array a;
  for (auto v : values) a.push_back(static_cast<std::int64_t>(v));
  return a;
}
template <class T>
T to_toml(const T& value) {
  return value;
}

// A value as TOML text ("32", "\"auto\"", "[ 0, 1, 2 ]").
template <class T>
std::string toml_text(const T& value) {
  std::ostringstream out;
  out << toml::table{{"v", to_toml(value)}};
  std::string s = out.str();
  s = s.substr(s.find('=') + 1);
  return s.substr(s.find_first_not_of(' '), s.find_last_not_of(" \n") - s.find_first_not_of(' ') + 1);
}

// Reads the keys of one core section: checks types and ranges, records each key with the value
// it took and its default, and reports unknown keys.
class SectionReader {
 public:
  SectionReader(const toml::table* table, std::string section, std::string file, ConfigRecord& record)
      : table_(table ? *table : empty_),
        section_(std::move(section)),
        file_(std::move(file)),
        record_(record),
        resolved_(record.section(section_)) {}

  [[noreturn]] void fail(const std::string& key, const toml::node& node, const std::string& problem) const {
    throw ConfigError(where(file_, node.source()) + ": [" + section_ + "] " + key + ": " + problem);
  }
  double number(const std::string& key, double fallback, double min, double max) {
    double v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_number(), "a number");
      v = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
      if (!(v >= min && v <= max))
        fail(key, *n,
             "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (received " +
                 std::to_string(v) + ")");
    }
    return remember(key, v, fallback);
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
    std::int64_t v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_integer(), "an integer");
      v = n->as_integer()->get();
      if (v < min || v > max)
        fail(key, *n,
             "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (received " +
                 std::to_string(v) + ")");
    }
    return remember(key, v, fallback);
  }
  std::string string(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed = {}) {
    std::string v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_string(), "a string");
      v = n->as_string()->get();
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
        fail(key, *n, "must be one of " + list + " (received \"" + v + "\")");
      }
    }
    return remember(key, v, fallback);
  }
  bool boolean(const std::string& key, bool fallback) {
    bool v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_boolean(), "true or false");
      v = n->as_boolean()->get();
    }
    return remember(key, v, fallback);
  }
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& fallback) {
    std::vector<std::string> v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_array(), "an array of strings");
      v.clear();
      for (const auto& item : *n->as_array()) {
        expect(key, item, item.is_string(), "an array of strings");
        v.push_back(item.as_string()->get());
      }
    }
    return remember(key, v, fallback);
  }
  std::vector<std::uint64_t> seeds(const std::string& key, const std::vector<std::uint64_t>& fallback) {
    std::vector<std::uint64_t> v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_array(), "an array of non-negative integers");
      v.clear();
      for (const auto& item : *n->as_array()) {
        expect(key, item, item.is_integer() && item.as_integer()->get() >= 0, "an array of non-negative integers");
        v.push_back(static_cast<std::uint64_t>(item.as_integer()->get()));
      }
    }
    return remember(key, v, fallback);
  }
  // A path: relative ones are taken from `base_dir`, and the resolved config holds the result.
  std::string path(const std::string& key, const std::string& base_dir) {
    std::string v = string(key, "");
    if (!v.empty() && v.front() != '/') v = base_dir + "/" + v;
    resolve(key, v);
    return v;
  }

  // The default of `key` is computed (the file's stem, its folder), not a constant.
  void computed_default(const std::string& key) { record_.note(section_, key, ""); }
  // What the resolved config holds for `key`, when the loader changed the value read.
  template <class T>
  void resolve(const std::string& key, const T& value) {
    resolved_.insert_or_assign(key, to_toml(value));
  }
  void leave_out(const std::string& key) { resolved_.erase(key); }
  // A sub-table `[section.key]` (a metric's options) is a known key, not a core one.
  void allow_table(const std::string& key) { known_.push_back(key); }
  // The node of a key read before (for messages about its value), or the table's.
  const toml::source_region& source(const std::string& key) const {
    const toml::node* n = table_.get(key);
    return n ? n->source() : table_.source();
  }
  // Every key of the table must have been asked for.
  void check_unknown() const {
    for (const auto& [key, node] : table_) {
      const std::string k(key.str());
      if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
      std::string msg = where(file_, key.source()) + ": [" + section_ + "] unknown key '" + k + "'";
      if (const auto guess = closest(k, known_); !guess.empty()) msg += "; did you mean '" + guess + "'?";
      std::string list;
      for (const auto& kk : known_) list += (list.empty() ? "" : ", ") + kk;
      throw ConfigError(msg + " Known keys of [" + section_ + "]: " + list + ".");
    }
  }

 private:
  const toml::node* get(const std::string& key) {
    known_.push_back(key);
    return table_.get(key);
  }
  void expect(const std::string& key, const toml::node& node, bool ok, const std::string& expected) const {
    if (!ok) fail(key, node, "expected " + expected + ", found " + type_name(node));
  }
  template <class T>
  T remember(const std::string& key, T value, const T& fallback) {
    record_.note(section_, key, toml_text(fallback));
    resolve(key, value);
    return value;
  }

  static inline const toml::table empty_{};
  const toml::table& table_;
  std::string section_;
  std::string file_;
  ConfigRecord& record_;
  toml::table& resolved_;
  std::vector<std::string> known_;
};

}  // namespace kgain::core::config_parts
