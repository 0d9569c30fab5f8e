// FeatureCache: pooled features on disk, in chunks, so that finished work survives a crash.
//
// A cache directory belongs to one key (the backbone's weights fingerprint, its taps, the
// preprocessing, the pooling and the exact image list); a different key gets a different
// directory, so stale features are never served. Inside, each variant has its own folder of
// chunk files, each holding the features of every tap for a fixed run of images. A chunk is
// written to a temporary file and renamed into place, so a chunk file is either whole or absent;
// a chunk that fails its size check is re-extracted.
//
// Chunk file layout (little-endian): "KGFEAT01", u64 images, u64 taps, u64 dims[taps], then
// float32 [images x dims[t]] for each tap in order.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace kgain::core {

class FeatureCache {
 public:
  // `root`: the cache folder of a run; `key`: the text that identifies the features (its hash
  // names the subfolder, and it is stored beside them as key.txt for humans).
  FeatureCache(const std::string& root, const std::string& key);

  const std::string& directory() const { return directory_; }

  // Reads a chunk; false when it is absent or unusable (a warning is logged for the latter).
  bool load(const std::string& variant, std::int64_t chunk, std::int64_t images, std::vector<at::Tensor>& taps) const;
  // Writes a chunk atomically (temporary file, then rename).
  void store(const std::string& variant, std::int64_t chunk, const std::vector<at::Tensor>& taps) const;
  // Images skipped as undecodable, with their reasons (bad_images.tsv beside the chunks).
  void record_bad_image(const std::string& path, const std::string& reason) const;
  std::map<std::string, std::string> bad_images() const;

 private:
  std::string chunk_path(const std::string& variant, std::int64_t chunk) const;
  std::string directory_;
};

// 64-bit FNV-1a, as 16 hex digits.
std::string fnv1a_hex(const std::string& text);

}  // namespace kgain::core
