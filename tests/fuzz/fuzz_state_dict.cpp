// libFuzzer target: the native backbone's reader of torch.save files (zip CRCs, the pickle).
#include <cstddef>
#include <cstdint>
#include <string>

#include <c10/util/Exception.h>

#include "scratch.hpp"
#include "state_dict.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string file = kgain::fuzz::write_scratch_file("state_dict.pt", data, size);
  try {
    kgain::native::read_state_dict(file);
  } catch (const std::runtime_error&) {
  } catch (const c10::Error&) {
  }
  return 0;
}
