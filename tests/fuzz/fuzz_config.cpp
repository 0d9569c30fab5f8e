// libFuzzer target: the config loader (TOML text -> Config, or a ConfigError naming the place).
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    kgain::core::parse_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  } catch (const kgain::core::ConfigError&) {
  } catch (const kgain::OptionError&) {
  }
  return 0;
}
