// libFuzzer target: the native backbone's .safetensors reader, and the key maps (timm, Hugging
// Face) applied to what it read, as the backbone does.
#include <cstddef>
#include <cstdint>
#include <string>

#include <c10/util/Exception.h>

#include "key_maps.hpp"
#include "safetensors.hpp"
#include "scratch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string file = kgain::fuzz::write_scratch_file("weights.safetensors", data, size);
  try {
    (void)kgain::native::looks_like_safetensors(file);
    auto state = kgain::native::read_safetensors(file);
    for (const auto& [name, tensor] : state)
      if (name.empty() && tensor.numel() < 0) __builtin_trap();
    const auto format = kgain::native::detect_key_format(state);
    for (const auto& [name, tensor] : kgain::native::to_torchvision_keys(std::move(state), format, "vit"))
      if (name.empty() && tensor.numel() < 0) __builtin_trap();
  } catch (const std::invalid_argument&) {  // two keys naming one parameter
  } catch (const std::runtime_error&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
