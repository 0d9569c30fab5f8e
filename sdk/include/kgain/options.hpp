// Options: the settings a plugin receives from its TOML table.
//
// The core turns the plugin's table (for example `[backbone]`) into an Options object: each key
// keeps its value and the place it was written ("configs/run.toml:12:3"), so that a plugin that
// rejects a value produces an error pointing at the line to fix. Plugins read what they need
// with the typed getters; the core then reports every key no plugin read as an unknown key,
// so a typo never passes silently.
// Threads: the getters record which keys were read, so one Options must not be read from two
// threads at once (the core serializes plugin factories); a plugin copies what it needs.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace kgain {

// Thrown for a missing, mistyped or out-of-range option. The message is complete: it names the
// place, the key, what was expected and what was received.
class OptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Options {
 public:
  using List = std::vector<std::variant<std::int64_t, double, std::string, bool>>;
  using Value = std::variant<bool, std::int64_t, double, std::string, List>;

  Options() = default;
  // `section` names the table ("backbone"); `base_dir` is the directory relative paths are
  // resolved against (the config file's directory).
  Options(std::string section, std::string base_dir) : section_(std::move(section)), base_dir_(std::move(base_dir)) {}

  void set(const std::string& key, Value value, std::string where = {}) {
    values_[key] = std::move(value);
    where_[key] = std::move(where);
  }

  bool has(const std::string& key) const { return values_.count(key) != 0; }
  const std::string& section() const { return section_; }
  const std::string& base_dir() const { return base_dir_; }
  const std::map<std::string, Value>& values() const { return values_; }

  // Where the key was written, "file:line:column", or the section name when it was not written.
  std::string where(const std::string& key) const {
    auto it = where_.find(key);
    if (it != where_.end() && !it->second.empty()) return it->second;
    return "[" + section_ + "]";
  }

  // Typed getters. The forms with a default return it when the key is absent; the `require_`
  // forms throw an OptionError naming the key when it is absent.
  std::string get_string(const std::string& key, const std::string& fallback) const {
    return has(key) ? require_string(key) : (mark(key), fallback);
  }
  std::string require_string(const std::string& key) const {
    const auto* s = std::get_if<std::string>(&lookup(key, "a string"));
    if (!s) throw type_error(key, "a string");
    return *s;
  }
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const {
    return has(key) ? require_int(key) : (mark(key), fallback);
  }
  std::int64_t require_int(const std::string& key) const {
    const auto* i = std::get_if<std::int64_t>(&lookup(key, "an integer"));
    if (!i) throw type_error(key, "an integer");
    return *i;
  }
  double get_double(const std::string& key, double fallback) const {
    return has(key) ? require_double(key) : (mark(key), fallback);
  }
  double require_double(const std::string& key) const {
    const Value& v = lookup(key, "a number");
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    throw type_error(key, "a number");
  }
  bool get_bool(const std::string& key, bool fallback) const {
    if (!has(key)) return mark(key), fallback;
    const auto* b = std::get_if<bool>(&lookup(key, "true or false"));
    if (!b) throw type_error(key, "true or false");
    return *b;
  }
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& fallback) const {
    if (!has(key)) return mark(key), fallback;
    const auto* list = std::get_if<List>(&lookup(key, "an array of strings"));
    if (!list) throw type_error(key, "an array of strings");
    std::vector<std::string> out;
    for (const auto& item : *list) {
      const auto* s = std::get_if<std::string>(&item);
      if (!s) throw type_error(key, "an array of strings");
      out.push_back(*s);
    }
    return out;
  }
  std::vector<std::int64_t> get_int_list(const std::string& key, const std::vector<std::int64_t>& fallback) const {
    if (!has(key)) return mark(key), fallback;
    const auto* list = std::get_if<List>(&lookup(key, "an array of integers"));
    if (!list) throw type_error(key, "an array of integers");
    std::vector<std::int64_t> out;
    for (const auto& item : *list) {
      const auto* i = std::get_if<std::int64_t>(&item);
      if (!i) throw type_error(key, "an array of integers");
      out.push_back(*i);
    }
    return out;
  }
  std::vector<double> get_double_list(const std::string& key, const std::vector<double>& fallback) const {
    if (!has(key)) return mark(key), fallback;
    const auto* list = std::get_if<List>(&lookup(key, "an array of numbers"));
    if (!list) throw type_error(key, "an array of numbers");
    std::vector<double> out;
    for (const auto& item : *list) {
      if (const auto* d = std::get_if<double>(&item))
        out.push_back(*d);
      else if (const auto* i = std::get_if<std::int64_t>(&item))
        out.push_back(static_cast<double>(*i));
      else
        throw type_error(key, "an array of numbers");
    }
    return out;
  }
  // A path option: relative paths are taken relative to base_dir().
  std::string get_path(const std::string& key, const std::string& fallback) const {
    std::string p = get_string(key, fallback);
    if (p.empty() || p.front() == '/' || base_dir_.empty()) return p;
    return base_dir_ + "/" + p;
  }
  std::string require_path(const std::string& key) const {
    require_string(key);
    return get_path(key, "");
  }

  // Builds an error about `key` that names its place: use it for values of the right type that
  // a plugin still cannot accept ("must be positive (received -1)").
  OptionError error(const std::string& key, const std::string& problem) const {
    return OptionError(where(key) + ": [" + section_ + "] " + key + ": " + problem);
  }

  // Keys that no getter asked for: the core reports them as unknown keys.
  std::vector<std::string> unread_keys() const {
    std::vector<std::string> out;
    for (const auto& [key, value] : values_)
      if (!read_.count(key)) out.push_back(key);
    return out;
  }
  // Keys a getter asked for, present or not (the names a plugin understands).
  std::vector<std::string> read_keys() const { return {read_.begin(), read_.end()}; }
  // Marks a key as consumed by the core itself (for example `plugin`).
  void mark(const std::string& key) const { read_.insert(key); }

 private:
  const Value& lookup(const std::string& key, const char* expected) const {
    mark(key);
    auto it = values_.find(key);
    if (it == values_.end())
      throw OptionError("[" + section_ + "] is missing the key '" + key + "' (" + expected + ")");
    return it->second;
  }
  OptionError type_error(const std::string& key, const char* expected) const {
    return error(key, std::string("expected ") + expected + ", found " + describe(values_.at(key)));
  }
  static std::string describe(const Value& v) {
    switch (v.index()) {
      case 0: return std::get<bool>(v) ? "true" : "false";
      case 1: return "the integer " + std::to_string(std::get<std::int64_t>(v));
      case 2: return "the number " + std::to_string(std::get<double>(v));
      case 3: return "the string \"" + std::get<std::string>(v) + "\"";
      default: return "an array";
    }
  }

  std::string section_;
  std::string base_dir_;
  std::map<std::string, Value> values_;
  std::map<std::string, std::string> where_;
  mutable std::set<std::string> read_;
};

}  // namespace kgain
