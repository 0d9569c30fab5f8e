// A content hash of a file (64-bit FNV-1a, hex): what feature caches key weights files and
// stain references on, so that a changed file is never served stale features.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace kgain {

inline std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t h = 1469598103934665603ULL;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0)
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<unsigned char>(buffer[i])) * 1099511628211ULL;
  std::ostringstream out;
  out << std::hex << h;
  return out.str();
}

}  // namespace kgain
