// Extraction: pooled features of every tap, for every variant, for every image of a dataset.
//
// Images are decoded once per chunk and shared by all variants (the pretrained network and
// each random one), decoding of the next chunk overlaps the forward passes of the current one,
// and every finished chunk goes to the FeatureCache at once. A rerun reads finished chunks and
// extracts only what is missing.
//
// An image that cannot be decoded stops the extraction with its path and the reason, or, with
// `skip_bad_images`, is listed in stats.bad_images (its rows hold zeros and must not be used);
// the cache keeps the list with each chunk, so a rerun knows it too, and applies the policy of
// the rerun. A non-finite feature (NaN or infinity from the network) is an error naming the
// variant, the tap and the image: it is never turned into a score.
//
// Threads: one decoding pool of `decode_threads` workers plus the caller's thread, which runs
// the forward passes; the backbone's networks are used from that thread only.
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

// What the extraction needs to know about the images beyond the samples themselves.
struct ExtractionInput {
  const std::vector<Sample>& samples;
  const std::vector<std::uint64_t>& identities;  // image_identities(samples, ...)
  const Preprocessing& prep;
  std::int64_t batch_size = 32;
  bool skip_bad_images = false;
  int decode_threads = 1;
};

// features[v][t]: float32 [images, dim_t] for variant v and tap t.
std::vector<std::vector<at::Tensor>> extract_features(Backbone& backbone, const std::vector<Variant>& variants, Pooling pooling,
                                                      const ExtractionInput& input, const FeatureCache& cache, ExtractionStats& stats);

// The images at `indices`, decoded into one normalized batch [n, 3, size, size]: the images a
// random variant re-estimates its batch-norm statistics on. An undecodable image is an error,
// or left out when `skip_bad_images`.
at::Tensor decode_calibration_images(const std::vector<Sample>& samples, const std::vector<std::int64_t>& indices,
                                     const Preprocessing& prep, bool skip_bad_images);

// The pretrained network's own class probabilities (the softmax of its ImageNet head) for
// every image, for LEEP and NCE; cached as the variant "source". An undefined tensor when the
// backbone has no head. Rows of skipped images (stats.bad_images of extract_features) hold
// zeros and must be left out by the caller.
at::Tensor extract_source_predictions(Backbone& backbone, const ExtractionInput& input, const FeatureCache& cache);

// Throws when `features` (rows = images [begin, begin + rows)) holds a NaN or an infinity,
// naming what produced it, the tap and the first such image.
void check_finite(const at::Tensor& features, const std::string& what, const std::vector<Sample>& samples, std::int64_t begin);

}  // namespace kgain::core
