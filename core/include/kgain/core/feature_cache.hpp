// FeatureCache: pooled features on disk, in chunks, so that finished work survives a crash.
//
// A cache directory belongs to one key (the backbone's weights fingerprint, its taps, the
// preprocessing, the pooling and the image list); a different key gets a different directory.
// Inside, each variant has its own folder of chunk files, each holding the features of every
// tap for a fixed run of images. A chunk is trusted only when everything checks out:
// - its `identity` (a hash of its images' paths and contents, see image_identity.hpp) equals
//   the one asked for, so an image replaced in place, or a bad image that was fixed, makes
//   exactly its chunk recompute;
// - its header and every tap's data pass their checksums (a zeroed or flipped block is found);
// - its sizes agree with the file size.
// Anything else is reported and recomputed. Chunks are written durably (durable_file.hpp).
//
// Chunk file layout (little-endian):
//   "KGFEAT02", u64 images, u64 taps, u64 identity, u64 bad rows,
//   u64 dims[taps], per bad row: u64 row, u64 length, reason bytes,
//   u64 header checksum (kgain::Hash64 of everything before it),
//   per tap: float32 [images x dims[t]] then u64 checksum of those bytes.
// Each tap's block is checked on its own, so a reader can load one tap without the others.
// Threads: load and store may be called from several threads for different chunks.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace kgain::core {

// The features of one chunk of images for one variant.
struct FeatureChunk {
  std::vector<at::Tensor> taps;                            // float32 [images, dim_t] per tap
  std::vector<std::pair<std::int64_t, std::string>> bad;   // rows that could not be decoded (row, reason); their features are 0
};

class FeatureCache {
 public:
  // `root`: the cache folder of a run; `key`: the text that identifies the features (its hash
  // names the subfolder, and it is stored beside them as key.txt for humans).
  FeatureCache(const std::string& root, const std::string& key);

  const std::string& directory() const { return directory_; }

  // Reads a chunk of `images` rows whose images hash to `identity`; false when it is absent,
  // of other images, or damaged (damage is logged as a warning).
  bool load(const std::string& variant, std::int64_t chunk, std::int64_t images, std::uint64_t identity, FeatureChunk& out) const;
  void store(const std::string& variant, std::int64_t chunk, std::uint64_t identity, const FeatureChunk& data) const;

  std::string chunk_path(const std::string& variant, std::int64_t chunk) const;

 private:
  std::string directory_;
};

// 64-bit hash of a text, as 16 hex digits (names cache folders).
std::string hash_hex(const std::string& text);

}  // namespace kgain::core
