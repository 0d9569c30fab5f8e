#include "extract/feature_store.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <kgain/util/file_hash.hpp>

#include "extract/durable_file.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

// 002 added the space's identity to the header (a segment copied into another space's folder
// was read as that space's features); segments of 001 are set aside and computed again.
constexpr char magic[8] = {'K', 'G', 'S', 'E', 'G', '0', '0', '2'};
constexpr std::uint64_t fixed_header = 40;  // magic, images, taps, precision, space
// Bounds that no real segment comes near; a header beyond them is damaged, not large.
constexpr std::uint64_t max_taps = 100000, max_dim = 1ULL << 24, max_images = 1ULL << 24;
// The fuzz build (tests/fuzz) skips the checksums so that mutated inputs reach the checks
// behind them; libFuzzer's conventional macro, never defined in a kgain build.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool skip_checksums = true;
#else
constexpr bool skip_checksums = false;
#endif

std::uint64_t u64_at(const std::string& bytes, std::size_t at) {
  std::uint64_t v;
  std::memcpy(&v, bytes.data() + at, 8);
  return v;
}

// A tap block's bytes before its checksum: float32 values, or for float16 a float32 scale per
// feature (its largest magnitude) then the values divided by it, so that features of any
// magnitude keep float16's relative precision (random networks with folded batch norm give
// features of 1e-15 and below, which plain float16 would flush to 0).
std::uint64_t block_bytes(std::uint64_t images, std::uint64_t dim, std::uint64_t precision) {
  return precision == 4 ? images * dim * 4 : dim * 4 + images * dim * 2;
}

std::string read_range(const std::string& path, std::uint64_t offset, std::uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  std::string out(size, '\0');
  if (!in.seekg(static_cast<std::streamoff>(offset)) || !in.read(out.data(), static_cast<std::streamsize>(size)))
    throw std::runtime_error("cannot read " + path + " (cut short since it was indexed?)");
  return out;
}

// A name no other writer uses: pid, time and a counter.
std::string segment_name() {
  static std::atomic<unsigned> counter{0};
  char name[96];
  std::snprintf(name, sizeof name, "seg-%d-%lld-%u.kgseg", static_cast<int>(::getpid()),
                static_cast<long long>(std::chrono::steady_clock::now().time_since_epoch().count()), counter++);
  return name;
}

}  // namespace

namespace {
std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

std::string hash_hex(const std::string& text) { return hex16(hash64(text.data(), text.size())); }

SegmentHeader parse_segment_header(const std::string& bytes, std::uint64_t file_size, const std::string& name,
                                   std::uint64_t& needed) {
  SegmentHeader h;
  needed = fixed_header;
  if (bytes.size() < fixed_header) return h;
  if (std::memcmp(bytes.data(), magic, 8) != 0)
    throw std::runtime_error(name + " is not a kgain feature segment of this version");
  h.images = u64_at(bytes, 8);
  const std::uint64_t taps = u64_at(bytes, 16);
  h.precision = u64_at(bytes, 24);
  h.space = u64_at(bytes, 32);
  if (h.images == 0 || h.images > max_images || taps == 0 || taps > max_taps || (h.precision != 4 && h.precision != 2))
    throw std::runtime_error(name + " has a damaged header");
  needed = fixed_header + 8 * taps + 8 * h.images + 8;
  if (needed > file_size) throw std::runtime_error(name + " is cut short");
  if (bytes.size() < needed) return h;
  std::uint64_t at = fixed_header;
  for (std::uint64_t t = 0; t < taps; ++t, at += 8) {
    h.dims.push_back(u64_at(bytes, at));
    if (h.dims.back() == 0 || h.dims.back() > max_dim) throw std::runtime_error(name + " has a damaged header");
  }
  for (std::uint64_t i = 0; i < h.images; ++i, at += 8) h.identities.push_back(u64_at(bytes, at));
  if (u64_at(bytes, at) != hash64(bytes.data(), at) && !skip_checksums)
    throw std::runtime_error(name + " fails its header checksum");
  h.header_bytes = at + 8;
  std::uint64_t offset = h.header_bytes;
  for (auto d : h.dims) {
    h.block_offsets.push_back(offset);
    offset += block_bytes(h.images, d, h.precision) + 8;  // bounded: images, dims and taps are capped above
  }
  if (offset != file_size)
    throw std::runtime_error(name + " has " + std::to_string(file_size) + " bytes where its header announces " +
                             std::to_string(offset));
  return h;
}

void check_segment_block(const SegmentHeader& h, std::size_t tap, const std::string& block, const std::string& name) {
  const std::uint64_t dim = h.dims.at(tap), values = h.images * dim, bytes = block_bytes(h.images, dim, h.precision);
  if (block.size() != bytes + 8) throw std::runtime_error(name + ": tap " + std::to_string(tap) + " is cut short");
  if (u64_at(block, bytes) != hash64(block.data(), bytes, tap) && !skip_checksums)
    throw std::runtime_error(name + " fails the checksum of tap " + std::to_string(tap));
  const auto not_finite = [&] {
    return std::runtime_error(name + ": tap " + std::to_string(tap) + " holds a value that is not a finite number");
  };
  const std::uint64_t floats = h.precision == 4 ? values : dim;  // float16 blocks: the scales
  for (std::uint64_t i = 0; i < floats; ++i) {
    float v;
    std::memcpy(&v, block.data() + 4 * i, 4);
    if (!std::isfinite(v) || (h.precision == 2 && !(v > 0))) throw not_finite();
  }
  for (std::uint64_t i = 0; h.precision == 2 && i < values; ++i) {
    std::uint16_t v;
    std::memcpy(&v, block.data() + 4 * dim + 2 * i, 2);
    if ((v & 0x7c00) == 0x7c00) throw not_finite();
  }
}

namespace {

// A tap's features as stored: float32 as they are; float16 scaled per feature (block_bytes).
std::string encode_block(const at::Tensor& x, StoragePrecision precision) {
  const at::Tensor f = x.to(at::kFloat).contiguous();
  if (precision == StoragePrecision::float32)
    return std::string(static_cast<const char*>(f.data_ptr()), static_cast<std::size_t>(f.numel()) * 4);
  at::Tensor scale = f.abs().amax(0);
  scale = at::where(scale > 0, scale, at::ones_like(scale)).contiguous();
  const at::Tensor half = (f / scale).to(at::kHalf).contiguous();
  std::string out(static_cast<const char*>(scale.data_ptr()), static_cast<std::size_t>(scale.numel()) * 4);
  out.append(static_cast<const char*>(half.data_ptr()), static_cast<std::size_t>(half.numel()) * 2);
  return out;
}

}  // namespace

FeatureSpace::FeatureSpace(const std::string& store, const std::string& key, StoragePrecision precision)
    : precision_(precision) {
  const std::string text = key + "\nprecision " + std::to_string(static_cast<int>(precision));
  identity_ = hash64(text.data(), text.size());
  directory_ = store + "/" + hex16(identity_);  // the folder is named by the identity segments carry
  fs::create_directories(directory_);
  const std::string key_file = directory_ + "/key.txt";
  if (!fs::exists(key_file)) write_file_atomically(key_file, text + "\n");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(directory_))
    if (e.path().extension() == ".kgseg") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());  // the same index whatever the directory order
  for (const auto& f : files) index_segment(f);
}

void FeatureSpace::index_segment(const std::string& path) {
  try {
    std::error_code ec;
    const std::uint64_t size = fs::file_size(path, ec);
    if (ec) return;  // removed by another run meanwhile
    std::uint64_t needed = 0;
    std::string bytes = read_range(path, 0, std::min<std::uint64_t>(size, 40));
    SegmentHeader h = parse_segment_header(bytes, size, path, needed);
    if (bytes.size() < needed) h = parse_segment_header(read_range(path, 0, needed), size, path, needed);
    // A segment copied or moved here from another space (a merge of two stores, say) holds
    // other numbers for the same images: used here, it would swap, say, pretrained and random.
    if (h.space != identity_)
      throw std::runtime_error(path + " was written for another feature space than the one whose folder holds it");
    if (!dims_.empty() && h.dims != dims_)
      throw std::runtime_error(path + " has other tap dimensions than the rest of its space");
    dims_ = h.dims;
    const std::size_t s = segments_.size();
    for (std::uint64_t row = 0; row < h.images; ++row) index_.emplace(h.identities[row], std::make_pair(s, row));
    segments_.push_back({path, std::move(h.identities), std::move(h.block_offsets), false});
  } catch (const std::runtime_error& e) {
    spdlog::warn("feature store: {}; set aside as {}.damaged, its images will be computed again", e.what(), path);
    std::error_code ec;
    fs::rename(path, path + ".damaged", ec);
  }
}

void FeatureSpace::set_aside(std::size_t s, const std::string& why) {
  spdlog::warn("feature store: {}; set aside as {}.damaged, its images will be computed again", why, segments_[s].path);
  std::error_code ec;
  fs::rename(segments_[s].path, segments_[s].path + ".damaged", ec);
  for (auto it = index_.begin(); it != index_.end();) it = it->second.first == s ? index_.erase(it) : std::next(it);
  // Another segment may hold the same images: index it again for them.
  for (std::size_t o = 0; o < segments_.size(); ++o)
    if (o != s && !segments_[o].identities.empty())
      for (std::uint64_t row = 0; row < segments_[o].identities.size(); ++row)
        index_.emplace(segments_[o].identities[row], std::make_pair(o, row));
  segments_[s].identities.clear();
}

int FeatureSpace::verify(const std::vector<std::uint64_t>& identities) {
  std::vector<char> needed(segments_.size(), 0);
  for (auto id : identities)
    if (const auto it = index_.find(id); it != index_.end()) needed[it->second.first] = 1;
  int damaged = 0;
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    if (!needed[s] || segments_[s].verified) continue;
    Segment& seg = segments_[s];
    SegmentHeader h;
    h.images = seg.identities.size();
    h.precision = static_cast<std::uint64_t>(precision_);
    h.dims = dims_;
    try {
      for (std::size_t t = 0; t < dims_.size(); ++t)
        check_segment_block(
            h, t, read_range(seg.path, seg.block_offsets[t], block_bytes(h.images, dims_[t], h.precision) + 8),
            seg.path);
      seg.verified = true;
    } catch (const std::runtime_error& e) {
      set_aside(s, e.what());
      ++damaged;
    }
  }
  return damaged;
}

void FeatureSpace::store(const std::vector<std::uint64_t>& identities, const std::vector<at::Tensor>& taps) {
  if (identities.empty()) return;
  std::string header(magic, 8);
  const auto put = [&](std::uint64_t v) { header.append(reinterpret_cast<const char*>(&v), 8); };
  put(identities.size());
  put(taps.size());
  put(static_cast<std::uint64_t>(precision_));
  put(identity_);
  std::vector<std::string> blocks;
  for (const auto& t : taps) {
    if (t.size(0) != static_cast<std::int64_t>(identities.size()) || !at::isfinite(t).all().item<bool>())
      throw std::invalid_argument("feature store: a block to store is mis-shaped or not finite");
    put(static_cast<std::uint64_t>(t.size(1)));
    blocks.push_back(encode_block(t, precision_));
  }
  for (auto id : identities) put(id);
  put(hash64(header.data(), header.size()));
  std::vector<std::uint64_t> checksums(blocks.size());
  std::vector<ByteSpan> pieces{{header.data(), header.size()}};
  for (std::size_t t = 0; t < blocks.size(); ++t) {
    checksums[t] = hash64(blocks[t].data(), blocks[t].size(), t);
    pieces.push_back({blocks[t].data(), blocks[t].size()});
    pieces.push_back({&checksums[t], 8});
  }
  const std::string path = directory_ + "/" + segment_name();
  write_file_atomically(path, pieces);
  if (dims_.empty())
    for (const auto& t : taps) dims_.push_back(static_cast<std::uint64_t>(t.size(1)));
  const std::size_t s = segments_.size();
  Segment seg{path, identities, {}, true};
  std::uint64_t offset = header.size();
  for (const auto& b : blocks) seg.block_offsets.push_back(offset), offset += b.size() + 8;
  for (std::uint64_t row = 0; row < identities.size(); ++row) index_.emplace(identities[row], std::make_pair(s, row));
  segments_.push_back(std::move(seg));
}

at::Tensor FeatureSpace::load_tap(std::size_t tap, const std::vector<std::uint64_t>& identities) const {
  if (tap >= dims_.size())
    throw std::runtime_error("feature store " + directory_ + " has no tap " + std::to_string(tap));
  const auto d = static_cast<std::int64_t>(dims_[tap]);
  at::Tensor out = at::zeros({static_cast<std::int64_t>(identities.size()), d}, at::kFloat);
  // rows wanted from each segment: (row in segment, row in out)
  std::vector<std::vector<std::pair<std::uint64_t, std::int64_t>>> wanted(segments_.size());
  for (std::size_t i = 0; i < identities.size(); ++i) {
    if (identities[i] == 0) continue;
    const auto it = index_.find(identities[i]);
    if (it == index_.end())
      throw std::runtime_error("feature store " + directory_ +
                               " lacks an image the study needs (removed while running?)");
    wanted[it->second.first].emplace_back(it->second.second, static_cast<std::int64_t>(i));
  }
  SegmentHeader h;
  h.precision = static_cast<std::uint64_t>(precision_);
  h.dims = dims_;
  float* dst = out.data_ptr<float>();
  for (std::size_t s = 0; s < segments_.size(); ++s) {
    if (wanted[s].empty()) continue;
    const Segment& seg = segments_[s];
    h.images = seg.identities.size();
    const std::string block =
        read_range(seg.path, seg.block_offsets[tap], block_bytes(h.images, dims_[tap], h.precision) + 8);
    check_segment_block(h, tap, block, seg.path);  // the file may have changed since it was verified
    if (precision_ == StoragePrecision::float32) {
      for (const auto& [row, i] : wanted[s])
        std::memcpy(dst + i * d, block.data() + row * d * 4, static_cast<std::size_t>(d) * 4);
    } else {
      const at::Tensor scale = at::from_blob(const_cast<char*>(block.data()), {d}, at::kFloat);
      const at::Tensor half =
          at::from_blob(const_cast<char*>(block.data()) + 4 * d, {static_cast<std::int64_t>(h.images), d}, at::kHalf);
      for (const auto& [row, i] : wanted[s]) out[i].copy_(half[static_cast<std::int64_t>(row)].to(at::kFloat) * scale);
    }
  }
  return out;
}

}  // namespace kgain::core
