#include "kgain/core/feature_cache.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace kgain::core {

namespace {
constexpr char magic[8] = {'K', 'G', 'F', 'E', 'A', 'T', '0', '1'};
}

std::string fnv1a_hex(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

FeatureCache::FeatureCache(const std::string& root, const std::string& key) : directory_(root + "/" + fnv1a_hex(key)) {
  fs::create_directories(directory_);
  const std::string key_file = directory_ + "/key.txt";
  if (!fs::exists(key_file)) {
    std::ofstream(key_file + ".tmp") << key;
    fs::rename(key_file + ".tmp", key_file);
  }
}

std::string FeatureCache::chunk_path(const std::string& variant, std::int64_t chunk) const {
  char name[32];
  std::snprintf(name, sizeof name, "chunk-%06lld.bin", static_cast<long long>(chunk));
  return directory_ + "/" + variant + "/" + name;
}

bool FeatureCache::load(const std::string& variant, std::int64_t chunk, std::int64_t images, std::vector<at::Tensor>& taps) const {
  const std::string path = chunk_path(variant, chunk);
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char m[8];
  std::uint64_t n = 0, count = 0;
  in.read(m, 8);
  in.read(reinterpret_cast<char*>(&n), 8);
  in.read(reinterpret_cast<char*>(&count), 8);
  if (!in || std::memcmp(m, magic, 8) != 0 || n != static_cast<std::uint64_t>(images) || count == 0 || count > 100000) {
    spdlog::warn("feature cache file {} is not a valid chunk of {} images; it will be extracted again", path, images);
    return false;
  }
  std::vector<std::uint64_t> dims(count);
  in.read(reinterpret_cast<char*>(dims.data()), static_cast<std::streamsize>(8 * count));
  std::uint64_t expected = 24 + 8 * count;
  for (auto d : dims) expected += 4 * n * d;
  std::error_code ec;
  if (!in || fs::file_size(path, ec) != expected) {
    spdlog::warn("feature cache file {} has the wrong size; it will be extracted again", path);
    return false;
  }
  taps.clear();
  for (auto d : dims) {
    at::Tensor t = at::empty({static_cast<std::int64_t>(n), static_cast<std::int64_t>(d)}, at::kFloat);
    in.read(reinterpret_cast<char*>(t.data_ptr<float>()), static_cast<std::streamsize>(4 * n * d));
    taps.push_back(t);
  }
  return static_cast<bool>(in);
}

void FeatureCache::store(const std::string& variant, std::int64_t chunk, const std::vector<at::Tensor>& taps) const {
  const std::string path = chunk_path(variant, chunk);
  fs::create_directories(fs::path(path).parent_path());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const std::uint64_t n = static_cast<std::uint64_t>(taps.front().size(0)), count = taps.size();
    out.write(magic, 8);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(reinterpret_cast<const char*>(&count), 8);
    for (const auto& t : taps) {
      const std::uint64_t d = static_cast<std::uint64_t>(t.size(1));
      out.write(reinterpret_cast<const char*>(&d), 8);
    }
    for (const auto& t : taps) {
      const at::Tensor c = t.to(at::kFloat).contiguous();
      out.write(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::streamsize>(4 * c.numel()));
    }
    out.flush();
    if (!out) throw std::runtime_error("cannot write the feature cache file " + tmp + " (disk full?)");
  }
  fs::rename(tmp, path);
}

void FeatureCache::record_bad_image(const std::string& path, const std::string& reason) const {
  std::ofstream out(directory_ + "/bad_images.tsv", std::ios::app);
  out << path << '\t' << reason << '\n';
}

std::map<std::string, std::string> FeatureCache::bad_images() const {
  std::map<std::string, std::string> out;
  std::ifstream in(directory_ + "/bad_images.tsv");
  std::string line;
  while (std::getline(in, line)) {
    const auto tab = line.find('\t');
    if (tab != std::string::npos) out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

}  // namespace kgain::core
