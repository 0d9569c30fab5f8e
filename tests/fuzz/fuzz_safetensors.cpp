// libFuzzer target: the native backbone's .safetensors reader.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

#include <c10/util/Exception.h>

#include "safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string file = "/tmp/kgain-fuzz-safetensors-" + std::to_string(::getpid()) + ".safetensors";
  std::ofstream(file, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    (void)kgain::native::looks_like_safetensors(file);
    for (const auto& [name, tensor] : kgain::native::read_safetensors(file))
      if (name.empty() && tensor.numel() < 0) __builtin_trap();
  } catch (const std::runtime_error&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
