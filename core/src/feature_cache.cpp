#include "kgain/core/feature_cache.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "kgain/core/durable_file.hpp"
#include <kgain/file_hash.hpp>

namespace fs = std::filesystem;

namespace kgain::core {

namespace {
constexpr char magic[8] = {'K', 'G', 'F', 'E', 'A', 'T', '0', '2'};
// Bounds that no real chunk comes near; a header beyond them is damaged, not large.
constexpr std::uint64_t max_taps = 100000, max_dim = 1ULL << 24, max_reason = 1 << 16;

// Reads little-endian u64s and byte strings from a stream, keeping what it read for the
// header checksum (computed over the whole header at once, as store() does).
class HeaderReader {
 public:
  explicit HeaderReader(std::istream& in) : in_(in) {}
  bool u64(std::uint64_t& v) { return bytes(&v, 8); }
  bool bytes(void* out, std::size_t n) {
    if (!in_.read(static_cast<char*>(out), static_cast<std::streamsize>(n))) return false;
    read_.append(static_cast<const char*>(out), n);
    return true;
  }
  std::uint64_t digest() const { return hash64(read_.data(), read_.size()); }

 private:
  std::istream& in_;
  std::string read_;
};

}  // namespace

std::string hash_hex(const std::string& text) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash64(text.data(), text.size())));
  return buf;
}

FeatureCache::FeatureCache(const std::string& root, const std::string& key) : directory_(root + "/" + hash_hex(key)) {
  fs::create_directories(directory_);
  const std::string key_file = directory_ + "/key.txt";
  if (!fs::exists(key_file)) write_file_atomically(key_file, key);
}

std::string FeatureCache::chunk_path(const std::string& variant, std::int64_t chunk) const {
  char name[32];
  std::snprintf(name, sizeof name, "chunk-%06lld.bin", static_cast<long long>(chunk));
  return directory_ + "/" + variant + "/" + name;
}

bool FeatureCache::load(const std::string& variant, std::int64_t chunk, std::int64_t images, std::uint64_t identity,
                        FeatureChunk& out) const {
  const std::string path = chunk_path(variant, chunk);
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const auto damaged = [&](const std::string& why) {
    spdlog::warn("feature cache file {} {}; it will be extracted again", path, why);
    return false;
  };
  HeaderReader h(in);
  char m[8];
  std::uint64_t n = 0, count = 0, stored_identity = 0, bad = 0;
  if (!h.bytes(m, 8) || std::memcmp(m, magic, 8) != 0) return damaged("is not a kgain feature chunk of this version");
  if (!h.u64(n) || !h.u64(count) || !h.u64(stored_identity) || !h.u64(bad)) return damaged("is cut short");
  if (n != static_cast<std::uint64_t>(images) || count == 0 || count > max_taps || bad > n) return damaged("has a damaged header");
  if (stored_identity != identity) {
    spdlog::info("feature cache chunk {} of variant {}: its images changed since it was extracted; extracting it again", chunk, variant);
    return false;
  }
  std::vector<std::uint64_t> dims(count);
  for (auto& d : dims)
    if (!h.u64(d) || d == 0 || d > max_dim) return damaged("has a damaged header");
  FeatureChunk chunk_data;
  for (std::uint64_t b = 0; b < bad; ++b) {
    std::uint64_t row = 0, length = 0;
    if (!h.u64(row) || !h.u64(length) || row >= n || length > max_reason) return damaged("has a damaged list of bad images");
    std::string reason(length, '\0');
    if (!h.bytes(reason.data(), length)) return damaged("is cut short");
    chunk_data.bad.emplace_back(static_cast<std::int64_t>(row), std::move(reason));
  }
  const std::uint64_t header_digest = h.digest();
  std::uint64_t header_checksum = 0;
  if (!in.read(reinterpret_cast<char*>(&header_checksum), 8) || header_checksum != header_digest)
    return damaged("fails its header checksum");
  std::uint64_t expected = static_cast<std::uint64_t>(in.tellg());
  for (auto d : dims) expected += 4 * n * d + 8;
  std::error_code ec;
  if (fs::file_size(path, ec) != expected) return damaged("has the wrong size");
  for (std::size_t t = 0; t < dims.size(); ++t) {
    at::Tensor x = at::empty({static_cast<std::int64_t>(n), static_cast<std::int64_t>(dims[t])}, at::kFloat);
    const std::size_t bytes = 4 * n * dims[t];
    std::uint64_t checksum = 0;
    if (!in.read(reinterpret_cast<char*>(x.data_ptr<float>()), static_cast<std::streamsize>(bytes)) ||
        !in.read(reinterpret_cast<char*>(&checksum), 8))
      return damaged("is cut short");
    if (checksum != hash64(x.data_ptr<float>(), bytes, t)) return damaged("fails the checksum of tap " + std::to_string(t));
    chunk_data.taps.push_back(std::move(x));
  }
  out = std::move(chunk_data);
  return true;
}

void FeatureCache::store(const std::string& variant, std::int64_t chunk, std::uint64_t identity, const FeatureChunk& data) const {
  const std::string path = chunk_path(variant, chunk);
  fs::create_directories(fs::path(path).parent_path());
  std::string header(magic, 8);
  const auto put = [&](std::uint64_t v) { header.append(reinterpret_cast<const char*>(&v), 8); };
  const std::uint64_t n = static_cast<std::uint64_t>(data.taps.front().size(0));
  put(n);
  put(data.taps.size());
  put(identity);
  put(data.bad.size());
  std::vector<at::Tensor> blocks;
  for (const auto& t : data.taps) {
    put(static_cast<std::uint64_t>(t.size(1)));
    blocks.push_back(t.to(at::kFloat).contiguous());
  }
  for (const auto& [row, reason] : data.bad) {
    put(static_cast<std::uint64_t>(row));
    put(reason.size());
    header += reason;
  }
  put(hash64(header.data(), header.size()));
  std::vector<std::uint64_t> checksums(blocks.size());
  std::vector<ByteSpan> pieces{{header.data(), header.size()}};
  for (std::size_t t = 0; t < blocks.size(); ++t) {
    const std::size_t bytes = 4 * static_cast<std::size_t>(blocks[t].numel());
    checksums[t] = hash64(blocks[t].data_ptr<float>(), bytes, t);
    pieces.push_back({blocks[t].data_ptr<float>(), bytes});
    pieces.push_back({&checksums[t], 8});
  }
  write_file_atomically(path, pieces);
}

}  // namespace kgain::core
