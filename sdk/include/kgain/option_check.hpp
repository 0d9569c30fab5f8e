// How Options applies a declaration (option_spec.hpp): the TOML literal of a default read into a
// value, a written value checked against its type, range and choices, and the words for both.
// Included at the end of options.hpp; plugins include options.hpp.
// Threads: free functions without state.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "kgain/options.hpp"

namespace kgain {

namespace option_detail {

// A number as people write it: 5, 0.5, 1e-06.
inline std::string format_number(double v) {
  char buffer[32];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buffer, sizeof buffer, "%.0f", v);
  else
    std::snprintf(buffer, sizeof buffer, "%g", v);
  return buffer;
}

// Reads the TOML text of a declared default: a boolean, an integer, a number, a "string" (no
// escapes) or an array of those. Throws std::logic_error: a bad literal is the plugin's bug.
class LiteralReader {
 public:
  explicit LiteralReader(const char* text) : text_(text) {}
  Options::Value read() {
    Options::Value v = value();
    skip_space();
    if (text_[at_] != '\0') fail();
    return v;
  }

 private:
  using Item = Options::List::value_type;
  Options::Value value() {
    skip_space();
    if (text_[at_] != '[') return std::visit([](auto x) -> Options::Value { return x; }, item());
    ++at_;
    Options::List list;
    skip_space();
    while (text_[at_] != ']') {
      list.push_back(item());
      skip_space();
      if (text_[at_] == ',')
        ++at_, skip_space();
      else if (text_[at_] != ']')
        fail();
    }
    ++at_;
    return list;
  }
  Item item() {
    skip_space();
    const std::string rest(text_ + at_);
    if (rest.rfind("true", 0) == 0) return at_ += 4, Item(true);
    if (rest.rfind("false", 0) == 0) return at_ += 5, Item(false);
    if (text_[at_] == '"') {
      const auto end = rest.find('"', 1);
      if (end == std::string::npos) fail();
      at_ += end + 1;
      return Item(rest.substr(1, end - 1));
    }
    const char* start = text_ + at_;
    char* end = nullptr;
    const long long whole = std::strtoll(start, &end, 10);
    if (end != start && *end != '.' && *end != 'e' && *end != 'E') {
      at_ += static_cast<std::size_t>(end - start);
      return Item(static_cast<std::int64_t>(whole));
    }
    const double real = std::strtod(start, &end);
    if (end == start) fail();
    at_ += static_cast<std::size_t>(end - start);
    return Item(real);
  }
  void skip_space() {
    while (text_[at_] == ' ') ++at_;
  }
  [[noreturn]] void fail() const {
    throw std::logic_error(std::string("an option's declared default is not a TOML value: ") + text_);
  }
  const char* text_;
  std::size_t at_ = 0;
};

// The '|'-separated choices of a declaration, each whole.
inline std::vector<std::string> choices_of(const char* choices) {
  std::vector<std::string> out;
  const std::string list = choices;
  for (std::size_t start = 0; start <= list.size();) {
    const std::size_t bar = std::min(list.find('|', start), list.size());
    out.push_back(list.substr(start, bar - start));
    start = bar + 1;
  }
  return out;
}

// Whether `s` is exactly one of the choices (a value holding '|' is none).
inline bool is_choice(const char* choices, const std::string& s) {
  const auto all = choices_of(choices);
  return std::find(all.begin(), all.end(), s) != all.end();
}

}  // namespace option_detail

// What a declaration accepts beyond its type, in words: "positive", "1 to 1024", "at least 2",
// "`auto`, `newton` or `lbfgs`" (choices in `quote`: backticks for the docs, double quotes, as
// TOML writes them, for errors); empty when anything of the type is accepted.
inline std::string constraint_text(const OptionSpec& spec, const char* quote = "`") {
  using option_detail::format_number;
  if (spec.choices) {
    const auto all = option_detail::choices_of(spec.choices);
    std::string out;
    for (std::size_t i = 0; i < all.size(); ++i)
      out += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + std::string(quote) + all[i] + quote;
    if (spec.type != OptionType::string_or_integer) return out;
    std::string range = constraint_text(spec.one_of(nullptr), quote);
    return range.empty() ? out : out + " or " + range;
  }
  const bool low = spec.has_minimum(), high = spec.has_maximum();
  if (low && high && spec.minimum_excluded)
    return "above " + format_number(spec.minimum) + ", at most " + format_number(spec.maximum);
  if (low && high) return format_number(spec.minimum) + " to " + format_number(spec.maximum);
  if (low && spec.minimum_excluded && spec.minimum == 0) return "positive";
  if (low) return (spec.minimum_excluded ? "above " : "at least ") + format_number(spec.minimum);
  if (high) return "at most " + format_number(spec.maximum);
  return "";
}

// The declared default as a value (nullptr default: a std::logic_error).
inline Options::Value declared_default(const OptionSpec& spec) {
  if (!spec.default_value)
    throw std::logic_error(std::string("the option '") + spec.name + "' has no declared default");
  return option_detail::LiteralReader(spec.default_value).read();
}

inline Options::Value Options::or_default(const std::string& key) const {
  note_read(key);
  const OptionSpec* spec = find_spec(key);
  if (!spec)
    throw std::logic_error("the plugin reads the option '" + key + "' of [" + section_ +
                           "] without a fallback, but does not declare it");
  // declare() has checked the written value's type; as_double and list_of take integers as numbers.
  return has(key) ? values_.at(key) : declared_default(*spec);
}

inline void Options::check_value(const OptionSpec& spec, const std::string& key, const Value& value) const {
  using option_detail::format_number;
  const bool list =
      spec.type == OptionType::strings || spec.type == OptionType::integers || spec.type == OptionType::numbers;
  const std::string expected = std::string(spec.type == OptionType::integer             ? "an integer"
                                           : spec.type == OptionType::number            ? "a number"
                                           : spec.type == OptionType::boolean           ? "true or false"
                                           : spec.type == OptionType::string_or_integer ? "a string or an integer"
                                           : list ? std::string("an ") + to_string(spec.type)
                                                  : "a string");
  const std::string each = list ? "every element " : "";
  const auto check_number = [&](double x) {
    if (std::isnan(x)) throw error(key, each + "must be a number (received nan)");
    const bool below = spec.minimum_excluded ? !(x > spec.minimum) : x < spec.minimum;
    if (below || x > spec.maximum)
      throw error(key, each + "must be " + constraint_text(spec, "\"") + " (received " + format_number(x) + ")");
  };
  const auto check_string = [&](const std::string& s) {
    if (spec.choices && !option_detail::is_choice(spec.choices, s))
      throw error(key, each + "must be " + constraint_text(spec, "\"") + " (received \"" + s + "\")");
  };
  const auto check_item = [&](const auto& item, OptionType type) {
    using T = std::decay_t<decltype(item)>;
    if constexpr (std::is_same_v<T, bool>) {
      if (type != OptionType::boolean) throw type_error(key, expected.c_str());
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
      if (type != OptionType::integer && type != OptionType::number && type != OptionType::string_or_integer)
        throw type_error(key, expected.c_str());
      check_number(static_cast<double>(item));
    } else if constexpr (std::is_same_v<T, double>) {
      if (type != OptionType::number) throw type_error(key, expected.c_str());
      check_number(item);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (type != OptionType::string && type != OptionType::path && type != OptionType::string_or_integer)
        throw type_error(key, expected.c_str());
      check_string(item);
    } else {
      throw type_error(key, expected.c_str());
    }
  };
  if (!list) return std::visit([&](const auto& v) { check_item(v, spec.type); }, value);
  const auto* items = std::get_if<List>(&value);
  if (!items) throw type_error(key, expected.c_str());
  const OptionType element = spec.type == OptionType::strings    ? OptionType::string
                             : spec.type == OptionType::integers ? OptionType::integer
                                                                 : OptionType::number;
  for (const auto& item : *items) std::visit([&](const auto& v) { check_item(v, element); }, item);
}

}  // namespace kgain
