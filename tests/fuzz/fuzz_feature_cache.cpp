// libFuzzer target: the feature cache's chunk reader (a chunk file on disk may be damaged).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <ATen/ATen.h>

#include <kgain/core/feature_cache.hpp>

// With KGAIN_FUZZ_WRITE_SEED=FILE: writes a valid chunk (4 images, 2 taps, 1 bad row, identity
// 7) to FILE for the seed corpus, then exits.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* out = std::getenv("KGAIN_FUZZ_WRITE_SEED")) {
    const std::string root = "/tmp/kgain-fuzz-seed-" + std::to_string(::getpid());
    const kgain::core::FeatureCache cache(root, "seed");
    kgain::core::FeatureChunk chunk;
    chunk.taps = {at::rand({4, 3}), at::rand({4, 5})};
    chunk.bad = {{2, "x.png: the image file is empty (0 bytes)"}};
    cache.store("v", 0, 7, chunk);
    std::filesystem::copy_file(cache.chunk_path("v", 0), out, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::remove_all(root);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string root = "/tmp/kgain-fuzz-cache-" + std::to_string(::getpid());
  static const kgain::core::FeatureCache cache(root, "fuzz");
  static const std::string path = cache.chunk_path("v", 0);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  // The identity the seed chunks were written with (see tools/fuzz.sh): 7; 4 images.
  kgain::core::FeatureChunk chunk;
  if (cache.load("v", 0, 4, 7, chunk)) {
    for (const auto& t : chunk.taps)
      if (t.size(0) != 4) __builtin_trap();
    for (const auto& [row, reason] : chunk.bad)
      if (row < 0 || row >= 4) __builtin_trap();
  }
  return 0;
}
