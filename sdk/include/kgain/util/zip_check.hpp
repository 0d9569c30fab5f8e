// verify_zip_checksums: checks every stored member of a zip archive against the CRC-32 in its
// central directory. PyTorch's files (torch.save since 1.6, torch.jit.save) are zip archives,
// and LibTorch's reader skips the CRCs (miniz built with MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS),
// so a weights file with a damaged block would load with wrong numbers. Call it before
// reading such a file. Header-only, no dependencies; reads the file once.
// Threads: safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kgain {

namespace zip_detail {
inline std::uint32_t crc32(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}
inline std::uint64_t le(const std::string& b, std::size_t at, int bytes) {
  if (at > b.size() || b.size() - at < static_cast<std::size_t>(bytes))
    throw std::runtime_error("the zip directory runs past the end of the file");
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}
}  // namespace zip_detail

// Throws std::runtime_error naming the file and the damaged member.
inline void verify_zip_checksums(const std::string& path) {
  using zip_detail::le;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string fail = "'" + path + "' is damaged: ";
  // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
  std::size_t eocd = std::string::npos;
  for (std::size_t i = b.size() >= 22 ? b.size() - 22 : 0, stop = b.size() > 65557 ? b.size() - 65557 : 0;
       b.size() >= 22; --i) {
    if (b.compare(i, 4, "PK\x05\x06") == 0) {
      eocd = i;
      break;
    }
    if (i == stop) break;
  }
  if (eocd == std::string::npos)
    throw std::runtime_error(fail + "not a zip archive, or cut short (no end of central directory)");
  std::uint64_t entries = le(b, eocd + 10, 2), directory = le(b, eocd + 16, 4);
  if (entries == 0xFFFF || directory == 0xFFFFFFFFu) {  // zip64: the locator sits just before
    if (eocd < 20 || b.compare(eocd - 20, 4, "PK\x06\x07") != 0)
      throw std::runtime_error(fail + "zip64 locator missing");
    const std::uint64_t record = le(b, eocd - 20 + 8, 8);
    if (le(b, record, 4) != 0x06064b50) throw std::runtime_error(fail + "zip64 directory record missing");
    entries = le(b, record + 32, 8);
    directory = le(b, record + 48, 8);
  }
  std::size_t at = directory;
  for (std::uint64_t e = 0; e < entries; ++e) {
    if (le(b, at, 4) != 0x02014b50) throw std::runtime_error(fail + "the zip central directory is damaged");
    const std::uint64_t method = le(b, at + 10, 2), crc = le(b, at + 16, 4);
    std::uint64_t size = le(b, at + 20, 4), local = le(b, at + 42, 4);
    const std::size_t name_length = le(b, at + 28, 2), extra_length = le(b, at + 30, 2),
                      comment_length = le(b, at + 32, 2);
    if (at + 46 + name_length > b.size()) throw std::runtime_error(fail + "the zip central directory is cut short");
    const std::string name = b.substr(at + 46, name_length);
    // zip64 sizes and offsets in the extra field (id 1), in the order of the fields that overflowed.
    for (std::size_t x = at + 46 + name_length, end = x + extra_length; x + 4 <= end;) {
      const std::uint64_t id = le(b, x, 2), length = le(b, x + 2, 2);
      if (id == 1) {
        std::size_t f = x + 4;
        if (le(b, at + 24, 4) == 0xFFFFFFFFu) f += 8;  // uncompressed size
        if (size == 0xFFFFFFFFu) size = le(b, f, 8), f += 8;
        if (local == 0xFFFFFFFFu) local = le(b, f, 8);
      }
      x += 4 + length;
    }
    if (method == 0) {  // stored: PyTorch's only method
      if (le(b, local, 4) != 0x04034b50)
        throw std::runtime_error(fail + "the zip member '" + name + "' has no local header");
      const std::uint64_t data = local + 30 + le(b, local + 26, 2) + le(b, local + 28, 2);
      if (data > b.size() || size > b.size() - data)
        throw std::runtime_error(fail + "the zip member '" + name + "' runs past the end of the file");
      if (zip_detail::crc32(reinterpret_cast<const unsigned char*>(b.data() + data), size) != crc)
        throw std::runtime_error(fail + "the zip member '" + name +
                                 "' does not match its CRC-32 (a damaged copy: download or copy it again)");
    }
    at += 46 + name_length + extra_length + comment_length;
  }
}

}  // namespace kgain
