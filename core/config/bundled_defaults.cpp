#include "config/bundled_defaults.hpp"

#include <stdexcept>
#include <string_view>

#include <toml++/toml.h>

#include "config/bundled_defaults_text.hpp"

namespace kgain::core {
namespace {

const toml::table& bundle() {
  static const toml::table table = [] {
    try {
      return toml::parse(std::string_view(bundled_defaults_text), std::string_view("plugins/defaults.toml"));
    } catch (const toml::parse_error& e) {  // a build-time mistake: fail loudly, never fall back silently
      throw std::logic_error("kgain was built with an invalid plugins/defaults.toml: " + std::string(e.description()));
    }
  }();
  return table;
}

}  // namespace

std::string bundled_default(const std::string& section, const std::string& key) {
  return bundle()[section][key].value_or(std::string());
}

std::vector<std::string> bundled_default_list(const std::string& section, const std::string& key) {
  std::vector<std::string> out;
  if (const toml::array* a = bundle()[section][key].as_array())
    for (const auto& item : *a)
      if (const auto s = item.value<std::string>()) out.push_back(*s);
  return out;
}

}  // namespace kgain::core
