// Content hashes. Hash64 is a fast 64-bit hash for integrity checks: it finds accidental
// change (a zeroed block, a truncated copy, an edited image), it is not cryptographic, so it
// does not stop someone who forges a file on purpose (docs/trust.md). Words of 8 bytes are
// folded in FNV-1a style with a final avalanche, several GB/s. file_fingerprint hashes a file's
// content: what feature caches key weights files and stain references on, so that a changed
// file is never served stale features; the core keys cached features on image content with it.
// Threads: no shared state; use one Hash64 per thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace kgain {

class Hash64 {
 public:
  explicit Hash64(std::uint64_t seed = 0) : h_(0xcbf29ce484222325ULL ^ (seed * 0x9e3779b97f4a7c15ULL)) {}

  Hash64& update(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    length_ += size;
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      fold(w);
    }
    if (i < size) {
      std::uint64_t w = 0;
      std::memcpy(&w, p + i, size - i);
      fold(w ^ (0xffULL << 56));  // a tail of zeros differs from no tail
    }
    return *this;
  }
  Hash64& update(std::string_view text) {
    update_u64(text.size());  // "ab","c" and "a","bc" differ
    return update(text.data(), text.size());
  }
  Hash64& update_u64(std::uint64_t v) { return update(&v, sizeof v); }

  std::uint64_t digest() const {
    std::uint64_t z = h_ ^ (length_ * 0xbf58476d1ce4e5b9ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;  // splitmix64's finalizer
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  void fold(std::uint64_t w) {
    h_ = (h_ ^ w) * 0x100000001b3ULL;
    h_ ^= h_ >> 29;
  }
  std::uint64_t h_;
  std::uint64_t length_ = 0;
};

inline std::uint64_t hash64(const void* data, std::size_t size, std::uint64_t seed = 0) {
  return Hash64(seed).update(data, size).digest();
}

// Adds the bytes of the file at `path` to `h`; false when it cannot be opened.
inline bool hash_file(Hash64& h, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) h.update(buffer, static_cast<std::size_t>(in.gcount()));
  return true;
}

inline std::string file_fingerprint(const std::string& path) {
  Hash64 h;
  hash_file(h, path);
  std::ostringstream out;
  out << std::hex << h.digest();
  return out.str();
}

}  // namespace kgain
