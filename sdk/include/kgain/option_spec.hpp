// OptionSpec: a plugin's options declared once, as data.
//
// A plugin class lists what its TOML table may hold in a static member, `declared_options`:
// name, type, default, the values it accepts and one line of meaning. Everything else is derived
// from that list: make_plugin (plugin.hpp) puts it into the library's manifest, so that
// `kgain list --options NAME` prints it and the docs test checks docs/config.md against it;
// before the plugin's constructor runs, the values written in the config are checked against it
// (type, range, choices), with the place to fix; the getters without a fallback (options.hpp)
// return its default. A plugin then reads its options and never checks a range by hand:
//
//   class Knn : public kgain::Probe {
//    public:
//     static constexpr std::array declared_options{
//         kgain::option::integer("k", "5", "neighbours").at_least(1),
//         kgain::option::string("distance", "\"euclidean\"", "how neighbours are found").one_of("euclidean|cosine"),
//     };
//     explicit Knn(const kgain::Options& o) : k_(o.get_int("k")), distance_(o.get_string("distance")) {}
//
// A default is written as TOML ("1.0", "\"auto\"", "true", "[\".png\", \".jpg\"]"); a default
// that the plugin computes (from the weights file, from another option) has no literal and a note
// for people instead (`computed("...")`), and the plugin passes its fallback to the getter.
// Threads: specs are constants; nothing here has state.
#pragma once

#include <array>  // plugins declare their options as a std::array
#include <cstdint>
#include <limits>

namespace kgain {

enum class OptionType : std::uint32_t {
  boolean = 1,
  integer = 2,
  number = 3,  // an integer is accepted where a number is expected
  string = 4,
  path = 5,  // a string; relative paths are taken relative to the config's folder
  strings = 6,
  integers = 7,
  numbers = 8,
  string_or_integer = 9,
};

inline const char* to_string(OptionType type) {
  switch (type) {
    case OptionType::boolean: return "boolean";
    case OptionType::integer: return "integer";
    case OptionType::number: return "number";
    case OptionType::string: return "string";
    case OptionType::path: return "path";
    case OptionType::strings: return "array of strings";
    case OptionType::integers: return "array of integers";
    case OptionType::numbers: return "array of numbers";
    case OptionType::string_or_integer: return "string or integer";
  }
  return "unknown";
}

// One option. Crosses the plugin boundary inside PluginInfo: a plain struct of constants.
struct OptionSpec {
  const char* name;
  OptionType type;
  const char* default_value;  // TOML text the getters return when the key is absent; nullptr: none
  const char* default_note;   // for people, when the default is computed or the option required
  double minimum;             // bounds on a number, an integer, or each element of a list
  double maximum;
  bool minimum_excluded;  // the bound itself is refused ("> 0")
  const char* choices;    // "auto|newton|lbfgs": the strings accepted; nullptr: any string
  const char* meaning;    // one line

  constexpr OptionSpec at_least(double bound) const {
    OptionSpec copy = *this;
    copy.minimum = bound;
    copy.minimum_excluded = false;
    return copy;
  }
  constexpr OptionSpec positive() const {
    OptionSpec copy = *this;
    copy.minimum = 0;
    copy.minimum_excluded = true;
    return copy;
  }
  constexpr OptionSpec at_most(double bound) const {
    OptionSpec copy = *this;
    copy.maximum = bound;
    return copy;
  }
  constexpr OptionSpec between(double low, double high) const {
    OptionSpec copy = at_least(low);
    copy.maximum = high;
    return copy;
  }
  constexpr OptionSpec one_of(const char* choice_list) const {
    OptionSpec copy = *this;
    copy.choices = choice_list;
    return copy;
  }
  // The default is not a constant: `note` says how the plugin finds it ("the weights file's
  // classifier, else 1000"; "(required)").
  constexpr OptionSpec computed(const char* note) const {
    OptionSpec copy = *this;
    copy.default_value = nullptr;
    copy.default_note = note;
    return copy;
  }
  // An option without a default that the plugin needs: it reads it with a `require_` getter.
  constexpr OptionSpec required() const { return computed("(required)"); }
  // A constant default with a qualification for people ("Hugging Face keys: 1e-12").
  constexpr OptionSpec noting(const char* note) const {
    OptionSpec copy = *this;
    copy.default_note = note;
    return copy;
  }
  constexpr bool has_minimum() const { return minimum > -std::numeric_limits<double>::infinity(); }
  constexpr bool has_maximum() const { return maximum < std::numeric_limits<double>::infinity(); }
};

// The declaration of a plugin without options: `static constexpr auto declared_options =
// kgain::no_options;` (every key written for it is then reported as unknown).
inline constexpr std::array<OptionSpec, 0> no_options{};

namespace option {
namespace detail {
constexpr OptionSpec make(const char* name, OptionType type, const char* default_value, const char* meaning) {
  return OptionSpec{name,
                    type,
                    default_value,
                    "",
                    -std::numeric_limits<double>::infinity(),
                    std::numeric_limits<double>::infinity(),
                    false,
                    nullptr,
                    meaning};
}
}  // namespace detail

// `default_value` is TOML text; pass nullptr for an option without a default (then use
// `required()` or `computed(note)` to say so).
constexpr OptionSpec boolean(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::boolean, default_value, meaning);
}
constexpr OptionSpec integer(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::integer, default_value, meaning);
}
constexpr OptionSpec number(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::number, default_value, meaning);
}
constexpr OptionSpec string(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::string, default_value, meaning);
}
constexpr OptionSpec path(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::path, default_value, meaning);
}
constexpr OptionSpec strings(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::strings, default_value, meaning);
}
constexpr OptionSpec integers(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::integers, default_value, meaning);
}
constexpr OptionSpec numbers(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::numbers, default_value, meaning);
}
constexpr OptionSpec string_or_integer(const char* name, const char* default_value, const char* meaning) {
  return detail::make(name, OptionType::string_or_integer, default_value, meaning);
}
}  // namespace option

}  // namespace kgain
