// Options: the settings a plugin receives from its TOML table.
//
// The core turns the plugin's table (for example `[backbone]`) into an Options object: each key
// keeps its value and the place it was written ("configs/run.toml:12:3"), so that a plugin that
// rejects a value produces an error pointing at the line to fix. Plugins read what they need
// with the typed getters; the core then reports every key no plugin read as an unknown key,
// so a typo never passes silently.
// A plugin that declares its options (option_spec.hpp) gets more: make_plugin calls declare()
// before the constructor, which checks every written value against the declaration (type,
// range, choices) and makes the getters without a fallback return the declared default; reading
// a key the plugin did not declare is then a bug in the plugin (std::logic_error), never a
// silent default.
// Threads: the getters record which keys were read, so one Options must not be read from two
// threads at once (the core serializes plugin factories); a plugin copies what it needs.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "kgain/option_spec.hpp"

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

  // Checks the written values against a plugin's declaration and keeps it for the getters
  // (make_plugin calls it; it is const because factories receive a const Options, like the
  // record of read keys). Throws OptionError naming the place of the first value it refuses.
  void declare(const OptionSpec* specs, std::size_t count) const {
    specs_ = specs;
    spec_count_ = count;
    declared_ = true;
    for (const auto& [key, value] : values_)
      if (const OptionSpec* spec = find_spec(key)) check_value(*spec, key, value);
  }
  bool declared() const { return declared_; }
  // The names a declaration holds, in its order.
  std::vector<std::string> declared_names() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < spec_count_; ++i)
      if (specs_[i].name) out.push_back(specs_[i].name);
    return out;
  }
  // The declaration of `key`, or nullptr.
  const OptionSpec* find_spec(const std::string& key) const {
    for (std::size_t i = 0; i < spec_count_; ++i)
      if (specs_[i].name && key == specs_[i].name) return &specs_[i];
    return nullptr;
  }

  // Typed getters. The forms with a fallback return it when the key is absent; the forms without
  // one return the declared default; the `require_` forms throw an OptionError naming the key
  // when it is absent.
  std::string get_string(const std::string& key) const { return std::get<std::string>(or_default(key)); }
  std::int64_t get_int(const std::string& key) const { return std::get<std::int64_t>(or_default(key)); }
  double get_double(const std::string& key) const { return as_double(or_default(key)); }
  bool get_bool(const std::string& key) const { return std::get<bool>(or_default(key)); }
  std::vector<std::string> get_string_list(const std::string& key) const {
    return list_of<std::string>(or_default(key));
  }
  std::vector<std::int64_t> get_int_list(const std::string& key) const {
    return list_of<std::int64_t>(or_default(key));
  }
  std::vector<double> get_double_list(const std::string& key) const { return list_of<double>(or_default(key)); }
  std::string get_path(const std::string& key) const { return resolve(get_string(key)); }
  std::string get_string(const std::string& key, const std::string& fallback) const {
    return has(key) ? require_string(key) : (note_read(key), fallback);
  }
  std::string require_string(const std::string& key) const {
    const auto* s = std::get_if<std::string>(&lookup(key, "a string"));
    if (!s) throw type_error(key, "a string");
    return *s;
  }
  std::int64_t get_int(const std::string& key, std::int64_t fallback) const {
    return has(key) ? require_int(key) : (note_read(key), fallback);
  }
  std::int64_t require_int(const std::string& key) const {
    const auto* i = std::get_if<std::int64_t>(&lookup(key, "an integer"));
    if (!i) throw type_error(key, "an integer");
    return *i;
  }
  double get_double(const std::string& key, double fallback) const {
    return has(key) ? require_double(key) : (note_read(key), fallback);
  }
  double require_double(const std::string& key) const {
    const Value& v = lookup(key, "a number");
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    throw type_error(key, "a number");
  }
  bool get_bool(const std::string& key, bool fallback) const {
    if (!has(key)) return note_read(key), fallback;
    const auto* b = std::get_if<bool>(&lookup(key, "true or false"));
    if (!b) throw type_error(key, "true or false");
    return *b;
  }
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& fallback) const {
    if (!has(key)) return note_read(key), fallback;
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
    if (!has(key)) return note_read(key), fallback;
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
    if (!has(key)) return note_read(key), fallback;
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
    return resolve(get_string(key, fallback));
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
  // Records a getter's read; with a declaration, a key outside it is the plugin's bug.
  void note_read(const std::string& key) const {
    if (declared_ && !find_spec(key))
      throw std::logic_error("the plugin reads the option '" + key + "' of [" + section_ +
                             "] but does not declare it in its declared_options");
    mark(key);
  }
  const Value& lookup(const std::string& key, const char* expected) const {
    note_read(key);
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

  std::string resolve(std::string p) const {
    if (p.empty() || p.front() == '/' || base_dir_.empty()) return p;
    return base_dir_ + "/" + p;
  }
  // The written value, or the declared default (a bug in the plugin when there is none).
  Value or_default(const std::string& key) const;
  static double as_double(const Value& v) {
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
    return std::get<double>(v);
  }
  // A list of the declared element type (declare() has checked it; an integer is a number).
  template <class T>
  static std::vector<T> list_of(const Value& v) {
    std::vector<T> out;
    for (const auto& item : std::get<List>(v)) {
      if constexpr (std::is_same_v<T, double>)
        out.push_back(std::holds_alternative<double>(item) ? std::get<double>(item)
                                                           : static_cast<double>(std::get<std::int64_t>(item)));
      else
        out.push_back(std::get<T>(item));
    }
    return out;
  }
  void check_value(const OptionSpec& spec, const std::string& key, const Value& value) const;

  std::string section_;
  std::string base_dir_;
  std::map<std::string, Value> values_;
  std::map<std::string, std::string> where_;
  mutable std::set<std::string> read_;
  mutable const OptionSpec* specs_ = nullptr;
  mutable std::size_t spec_count_ = 0;
  mutable bool declared_ = false;
};

}  // namespace kgain

#include "kgain/option_check.hpp"  // Options::or_default and Options::check_value
