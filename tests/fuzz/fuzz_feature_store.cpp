// A feature-store segment (feature_store.hpp) that may be damaged or forged: its header and tap
// blocks must be refused with an error, never crash, hang or allocate beyond the file's size.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "extract/feature_store.hpp"

// KGAIN_FUZZ_WRITE_SEED=FILE writes a small real segment (2 taps, 3 images) there and exits.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* out = std::getenv("KGAIN_FUZZ_WRITE_SEED");
  if (!out) return 0;
  const std::string dir = std::filesystem::temp_directory_path() / "kgain-fuzz-seed";
  std::filesystem::remove_all(dir);
  kgain::core::FeatureSpace space(dir, "seed", kgain::core::StoragePrecision::float32);
  space.store({11, 22, 33}, {at::arange(6, at::kFloat).reshape({3, 2}), at::ones({3, 4})});
  for (const auto& e : std::filesystem::directory_iterator(space.directory()))
    if (e.path().extension() == ".kgseg")
      std::filesystem::copy_file(e.path(), out, std::filesystem::copy_options::overwrite_existing);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    std::uint64_t needed = 0;
    kgain::core::SegmentHeader h = kgain::core::parse_segment_header(bytes, bytes.size(), "fuzz.kgseg", needed);
    if (bytes.size() < needed) return 0;
    for (std::size_t t = 0; t < h.dims.size(); ++t) {
      const std::uint64_t begin = h.block_offsets[t], length = h.images * h.dims[t] * h.precision + 8;
      kgain::core::check_segment_block(h, t, bytes.substr(begin, length), "fuzz.kgseg");
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
