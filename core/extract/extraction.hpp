// Extraction: pooled features of every tap, for every variant, for every image of a study, into
// the feature store (feature_store.hpp), one feature space per variant.
//
// Only the images a variant's space lacks are forwarded: a rerun, or another study on the same
// images and backbone, computes nothing again. Missing images are decoded once per chunk of
// `chunk_images` and shared by every variant that lacks them; decoding of the next chunk
// overlaps the forward passes of the current one, and every finished (chunk, variant) is stored
// at once, so an interrupted run loses at most the chunk in flight. The probes then read the
// features back one tap at a time (load_tap): memory holds one tap, never all of them.
//
// An image that cannot be decoded stops the extraction with its path and the reason, or, with
// `skip_bad_images`, is listed in stats.bad_images and has no features. The store keeps only
// images that decoded, so a rerun decodes a bad image again and applies its own policy. A
// non-finite feature (NaN or infinity from the network) is an error naming the variant, the tap
// and the image: it is never stored nor turned into a score.
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

#include "extract/feature_store.hpp"
#include "images/image.hpp"

namespace kgain::core {

// An image that could not be decoded (with on_bad_image = "skip"): its index into the samples,
// and why. It has no features and leaves every fold.
struct BadImage {
  std::int64_t index = 0;
  std::string reason;
  bool operator<(const BadImage& other) const {
    return index != other.index ? index < other.index : reason < other.reason;
  }
};

struct ExtractionStats {
  std::int64_t images_decoded = 0;
  std::int64_t images_forwarded = 0;   // images x variants that went through a network
  std::int64_t images_from_store = 0;  // images x variants the feature store already held
  std::int64_t segments_written = 0;   // (chunk, variant) segments stored
  double seconds = 0;
  // Images that could not be decoded (index into the samples, reason), when skipping them.
  std::vector<BadImage> bad_images;
};

// Images decoded and stored together: the unit of work that survives a crash.
inline constexpr std::int64_t chunk_images = 256;

// What the extraction needs to know about the images beyond the samples themselves.
struct ExtractionInput {
  const std::vector<Sample>& samples;
  const std::vector<std::uint64_t>& identities;  // image_identities(samples, ...)
  const Preprocessing& prep;
  std::int64_t batch_size = 32;
  bool skip_bad_images = false;
  int decode_threads = 1;
  // This process computes the chunks k with k % share_count == share_rank (the ranks of an MPI
  // job split the missing images; cluster.hpp); the others are left to the other ranks.
  int share_rank = 0, share_count = 1;
  // Tests only ($KGAIN_TEST_KILL_RANK=R:N): this rank kills itself (SIGKILL) after storing N
  // segments, as a crashed node would.
  std::int64_t die_after_segments = 0;
};

// Makes spaces[v] hold every decodable image's features for variant v (stats say what it took).
void extract_features(Backbone& backbone, const std::vector<Variant>& variants, Pooling pooling,
                      const ExtractionInput& input, std::vector<FeatureSpace>& spaces, ExtractionStats& stats);

// Tap `tap` of every image from `space`, float32 [images, dim]; rows of the images `left_out`
// (stats.bad_images) are zeros and must not be used. Checked for finite values.
at::Tensor load_tap(const FeatureSpace& space, std::size_t tap, const std::vector<std::uint64_t>& identities,
                    const std::vector<BadImage>& left_out, const std::vector<Sample>& samples);

// The images at `indices`, decoded into one normalized batch [n, 3, size, size]: the images a
// random variant re-estimates its batch-norm statistics on. An undecodable image is an error,
// or left out when `skip_bad_images`.
at::Tensor decode_calibration_images(const std::vector<Sample>& samples, const std::vector<std::int64_t>& indices,
                                     const Preprocessing& prep, bool skip_bad_images);

// The pretrained network's own class probabilities (the softmax of its ImageNet head) for
// every image, for LEEP and NCE; kept in `space` (the "source" variant's). An undefined tensor
// when the backbone has no head. Rows of the images `left_out` hold zeros and must be left out
// by the caller. `pooling` is the study's (the network is instantiated with it; it must fit the
// taps, though the head does not use them).
at::Tensor extract_source_predictions(Backbone& backbone, Pooling pooling, const ExtractionInput& input,
                                      FeatureSpace& space, const std::vector<BadImage>& left_out);

// Throws when `features` (rows = images [begin, begin + rows)) holds a NaN or an infinity,
// naming what produced it, the tap and the first such image.
void check_finite(const at::Tensor& features, const std::string& what, const std::vector<Sample>& samples,
                  std::int64_t begin);

}  // namespace kgain::core
