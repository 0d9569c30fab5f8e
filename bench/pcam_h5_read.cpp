// PatchCamelyon HDF5 reading: every patch of a PCam-layout set through the pcam_h5 plugin, the
// kgain side of bench/pcam_h5_read.py (h5py, that is libhdf5, on the same files).
//
//   ./build/bench/kgain_bench_pcam_h5 DIR
//
// Prints, per split: patches, tumour labels, a checksum of every pixel in patch order (the same
// formula as the Python side, so equal lines mean the two readers agree byte for byte), and the
// seconds spent opening (listing) and reading. Pixels are read one patch at a time, as the
// core's decoding threads ask for them.
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "plan/registry.hpp"
#include <kgain/dataset.hpp>

using namespace kgain;

namespace {

// sum over patches p (from 1) of p * sum_i pixel_i * (i % 65521 + 1), modulo 2^61.
struct Checksum {
  std::vector<std::uint64_t> weights;
  std::uint64_t total = 0, patches = 0;
  void add(const std::vector<std::uint8_t>& pixels) {
    if (weights.size() != pixels.size()) {
      weights.resize(pixels.size());
      for (std::size_t i = 0; i < pixels.size(); ++i) weights[i] = i % 65521 + 1;
    }
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < pixels.size(); ++i) sum += pixels[i] * weights[i];
    ++patches;
    const unsigned __int128 term = static_cast<unsigned __int128>(sum % (1ULL << 61)) * patches;
    total = static_cast<std::uint64_t>((total + term) % (1ULL << 61));
  }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::cerr << "usage: kgain_bench_pcam_h5 DIR\n";
    return 2;
  }
  core::Registry registry;
  registry.add_directory(KGAIN_PLUGIN_DIR);
  Options options("dataset", "");
  options.set("root", std::string(argv[1]));
  const auto opened = std::chrono::steady_clock::now();
  const auto dataset = registry.create<Dataset>("pcam_h5", options);
  const auto samples = dataset->samples();
  const double open_seconds = seconds_since(opened);
  std::map<std::string, Checksum> sums;
  std::map<std::string, int> tumours;
  RgbImage image;
  const auto reading = std::chrono::steady_clock::now();
  for (const auto& s : samples) {
    dataset->read_pixels(s, image);
    sums[s.split].add(image.pixels);
    tumours[s.split] += s.label;
  }
  const double read_seconds = seconds_since(reading);
  for (const char* split : {"train", "valid", "test"})
    if (sums.count(split))
      std::cout << split << " " << sums[split].patches << " " << tumours[split] << " " << sums[split].total << "\n";
  std::cout << "open " << open_seconds << " s, read " << read_seconds << " s, " << samples.size() / read_seconds
            << " patches/s\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "kgain_bench_pcam_h5: " << e.what() << "\n";
  return 1;
}
