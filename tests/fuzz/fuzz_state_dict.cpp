// libFuzzer target: the native backbone's reader of torch.save files (zip CRCs, the pickle).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <unistd.h>

#include <c10/util/Exception.h>

#include "state_dict.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string file = "/tmp/kgain-fuzz-state-dict-" + std::to_string(::getpid()) + ".pt";
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    kgain::native::read_state_dict(file);
  } catch (const std::runtime_error&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
