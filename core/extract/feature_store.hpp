// FeatureStore: pooled features kept by what determines them, shared by runs and studies.
//
// A store is a folder (by default RUN_DIR/cache; `[run] feature_store` or $KGAIN_FEATURE_STORE
// name one that several studies share). Inside, one folder per *feature space*: a hash of all
// that the numbers depend on besides the image (the backbone's fingerprint, which covers its
// weights' content, the variant with its seed and batch-norm calibration, the taps, the input
// size, resize, stain normalization, pooling and storage precision); `key.txt` holds that text.
// In a space, features are stored per image, keyed on the image's content identity
// (image_identity.hpp; not its path), in write-once segment files: a study finds the images it
// needs wherever an earlier run or study left them, and forwards only the others. Another
// probe, metric, split, or a subset of the images forwards no image at all.
//
// Segment file layout (little-endian):
//   "KGSEG002", u64 images, u64 taps, u64 precision (4: float32, 2: float16),
//   u64 space (Hash64 of the space's key text: a segment found in another space's folder is
//   set aside like a damaged one), u64 dims[taps], u64 identities[images],
//   u64 header checksum (kgain::Hash64 of everything before it),
//   per tap: the values, then u64 checksum of those bytes. float32: [images x dims[t]] floats.
//   float16: dims[t] float32 scales (each feature's largest magnitude), then [images x dims[t]]
//   halves of value / scale, so that every feature keeps float16's relative precision whatever
//   its magnitude (plain float16 would flush the 1e-15 features of some random networks to 0).
// Each tap's block is checked on its own, so a reader loads one tap without the others.
//
// Trust and concurrency: a segment is written under a unique temporary name, fsynced and renamed
// (durable_file.hpp), and never changed afterwards, so runs sharing a store never see half a
// file and never overwrite each other (two runs that compute the same images write two
// segments; either serves). Opening a space checks every segment's header (checksum, sizes
// against the file); verify() then checks every tap block of the segments a study needs. A
// damaged segment is reported, moved aside (*.damaged) and its images are computed again. A
// NaN or infinity is refused when stored and when read.
// Threads: one FeatureSpace per thread, or read-only use (load_tap) from several.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace kgain::core {

enum class StoragePrecision { float32 = 4, float16 = 2 };

// The features of one variant in one feature space.
class FeatureSpace {
 public:
  // Opens (creating when absent) the space of `key` under `store`, and indexes its segments.
  FeatureSpace(const std::string& store, const std::string& key, StoragePrecision precision);

  const std::string& directory() const { return directory_; }
  // Hash64 of the key text; every segment of this space carries it in its header.
  std::uint64_t identity() const { return identity_; }
  StoragePrecision precision() const { return precision_; }
  // Checks every tap block of the segments that hold any of `identities`; a damaged one is moved
  // aside and forgotten, so has() is false for its images. Returns how many were damaged.
  int verify(const std::vector<std::uint64_t>& identities);
  bool has(std::uint64_t identity) const { return index_.count(identity) != 0; }
  std::size_t images() const { return index_.size(); }

  // Stores one segment: taps[t] is float [identities.size(), dim_t]; every value must be finite.
  void store(const std::vector<std::uint64_t>& identities, const std::vector<at::Tensor>& taps);

  // Tap t of the images with `identities` (in that order) as float32 [n, dim_t]; rows whose
  // identity is 0 (images left out) are zeros. Throws std::runtime_error naming the segment when
  // a needed identity is missing or a block fails its checksum since the space was opened.
  at::Tensor load_tap(std::size_t tap, const std::vector<std::uint64_t>& identities) const;

  // The number of taps and their dimensions (empty while the space holds nothing).
  const std::vector<std::uint64_t>& dims() const { return dims_; }

 private:
  struct Segment {
    std::string path;
    std::vector<std::uint64_t> identities;
    std::vector<std::uint64_t> block_offsets;  // byte offset of each tap block
    bool verified = false;
  };
  void index_segment(const std::string& path);
  void set_aside(std::size_t segment, const std::string& why);

  std::string directory_;
  std::uint64_t identity_ = 0;
  StoragePrecision precision_;
  std::vector<Segment> segments_;
  std::vector<std::uint64_t> dims_;
  std::unordered_map<std::uint64_t, std::pair<std::size_t, std::uint64_t>> index_;  // identity -> (segment, row)
};

// A segment's header: parsed from the first bytes of a file of `file_size` bytes (the header
// may be followed by anything; only `header` bytes are read). Throws std::runtime_error with the
// reason; `needed` is set to the header's length when `bytes` holds less of it.
struct SegmentHeader {
  std::uint64_t images = 0, precision = 4, space = 0, header_bytes = 0;
  std::vector<std::uint64_t> dims, identities, block_offsets;
};
SegmentHeader parse_segment_header(const std::string& bytes, std::uint64_t file_size, const std::string& name,
                                   std::uint64_t& needed);
// Checks one tap block (values and the checksum after them) of a segment; the fuzz target and
// verify() call it. Throws std::runtime_error with the reason.
void check_segment_block(const SegmentHeader& header, std::size_t tap, const std::string& block,
                         const std::string& name);

// 64-bit hash of a text, as 16 hex digits (names feature-space folders).
std::string hash_hex(const std::string& text);

}  // namespace kgain::core
