// Dataset: a plugin that lists the images of a labelled image set.
//
// A dataset plugin only says what the images are (path, class, group, split); the core decodes,
// resizes and normalizes them, so every dataset is preprocessed the same way and a loader stays
// small. Groups matter in pathology: images cut from the same patient, slide or source tile
// are near-copies, and a split that puts one group on both sides inflates every score.
// Threads: the core creates a dataset once per run and calls it from one thread, except
// read_pixels() and content_identity(), which several decoding threads call at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kgain/plugin.hpp"

namespace kgain {

struct Sample {
  std::string path;   // absolute, or relative to the current directory
  int label = -1;     // index into Dataset::class_names()
  std::string group;  // patient, slide or source tile; empty when the set has no groups
  std::string split;  // "train", "valid" or "test" when the set has its own split; else empty
};

// An image as 8-bit RGB pixels, row-major: pixels[(y * width + x) * 3 + c].
struct RgbImage {
  int height = 0;
  int width = 0;
  std::vector<std::uint8_t> pixels;
};

class BOOST_SYMBOL_VISIBLE Dataset : public Plugin {
 public:
  // Class names in label order (label i is class_names()[i]).
  virtual std::vector<std::string> class_names() const = 0;
  // Every image of the set, in a stable order (the order of the feature cache).
  virtual std::vector<Sample> samples() const = 0;
  // A short description for logs and reports ("manifest ../data/pcam-mini/manifest.csv").
  virtual std::string description() const = 0;
  // For a set that keeps its images inside a container (PCam's HDF5 arrays) rather than as
  // files: fills `out` with the pixels of `sample` and returns true. The default returns false:
  // the core decodes `sample.path` as an image file. Called from several decoding threads at
  // once; throw std::runtime_error (naming the sample) for an image that cannot be read.
  virtual bool read_pixels(const Sample& sample, RgbImage& out) const {
    (void)sample;
    (void)out;
    return false;
  }
  // Optional, for a set whose images are cheaper to identify than to read (slide tiles): sets
  // `identity` to a 64-bit hash of everything the pixels of `sample` depend on (the source's
  // content, coordinates, size, resampling) and returns true. The feature cache keys features
  // on it, so it must change whenever the pixels would. The default returns false: the core
  // hashes the file, or the pixels read_pixels gives. Called from several threads at once.
  virtual bool content_identity(const Sample& sample, std::uint64_t& identity) const {
    (void)sample;
    (void)identity;
    return false;
  }
  // Optional: what `kgain data` prints after its generic summary (a per-slide table, say).
  virtual std::string data_report() const { return {}; }
  // Optional: things the user should know about the set as loaded (a slide skipped, and why);
  // the core logs each as a warning and `kgain data` lists them.
  virtual std::vector<std::string> warnings() const { return {}; }
};

// The `classes` option every dataset plugin takes: the classes to study, in label order; absent
// means all the set has (returned empty). An empty list is refused: `classes = []` reads as
// "none", and taking it as "all" would study what the user excluded.
inline std::vector<std::string> class_list_option(const Options& options) {
  if (!options.has("classes")) return options.get_string_list("classes", {});
  std::vector<std::string> classes = options.get_string_list("classes", {});
  if (classes.empty())
    throw options.error("classes", "is an empty list; name the classes to study, or remove the key to study all");
  return classes;
}

}  // namespace kgain
