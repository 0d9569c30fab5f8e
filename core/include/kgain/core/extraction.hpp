// Extraction: pooled features of every tap, for every variant, for every image of a dataset.
//
// Images are decoded once per chunk and shared by all variants (the pretrained network and
// each random one), decoding of the next chunk overlaps the forward passes of the current one,
// and every finished chunk goes to the FeatureCache at once. A rerun reads finished chunks and
// extracts only what is missing.
//
// An image that cannot be decoded stops the extraction with its path and the reason, or, with
// `skip_bad_images`, gets NaN features at every tap (cached like any other row) and is listed
// in stats.bad_images, with reasons kept in the cache folder for reruns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <kgain/backbone.hpp>
#include <kgain/dataset.hpp>

#include "kgain/core/feature_cache.hpp"
#include "kgain/core/image.hpp"

namespace kgain::core {

struct ExtractionStats {
  std::int64_t images_decoded = 0;
  std::int64_t images_forwarded = 0;  // images x variants that went through a network
  std::int64_t chunks_reused = 0;     // (chunk, variant) pairs read from the cache
  std::int64_t chunks_extracted = 0;  // (chunk, variant) pairs computed
  double seconds = 0;
  // Images that could not be decoded (index into the samples, reason), when skipping them.
  std::vector<std::pair<std::int64_t, std::string>> bad_images;
};

// Images per cache chunk: the unit of work that survives a crash.
inline constexpr std::int64_t chunk_images = 256;

// features[v][t]: float32 [images, dim_t] for variant v and tap t.
std::vector<std::vector<at::Tensor>> extract_features(Backbone& backbone, const std::vector<Variant>& variants, Pooling pooling,
                                                      const std::vector<Sample>& samples, const Preprocessing& prep,
                                                      std::int64_t batch_size, const FeatureCache& cache, ExtractionStats& stats,
                                                      bool skip_bad_images = false, int decode_threads = 1);

// The images at `indices`, decoded into one normalized batch [n, 3, size, size]: the images a
// random variant re-estimates its batch-norm statistics on. An undecodable image is an error,
// or left out when `skip_bad_images`.
at::Tensor decode_calibration_images(const std::vector<Sample>& samples, const std::vector<std::int64_t>& indices,
                                     const Preprocessing& prep, bool skip_bad_images);

// The pretrained network's own class probabilities (the softmax of its ImageNet head) for
// every image, for LEEP and NCE; cached as the variant "source". An undefined tensor when the
// backbone has no head. Rows of skipped images are NaN.

at::Tensor extract_source_predictions(Backbone& backbone, const std::vector<Sample>& samples, const Preprocessing& prep,
                                      std::int64_t batch_size, const FeatureCache& cache, bool skip_bad_images);

}  // namespace kgain::core
