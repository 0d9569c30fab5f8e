// Image decoding and preprocessing: file -> normalized float CHW, as torchvision would feed it.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <kgain/dataset.hpp>

#include "images/stain.hpp"

namespace kgain::core {

// A file that cannot be used as an image; the message names the file and the reason.
class ImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Preprocessing {
  std::int64_t size = 224;                   // output side in pixels
  std::string resize = "shorter_side_crop";  // or "stretch", or "pad" (to a square, with the ImageNet mean colour)
  // Stain normalization after resizing (none when null): maps each image's H&E colours to a
  // reference image's.
  std::shared_ptr<const StainReference> stain;
  // A dataset that keeps its pixels itself (Dataset::read_pixels); null: every sample is a file.
  const Dataset* pixel_source = nullptr;
};

// ImageNet normalization (torchvision's), applied after scaling to [0, 1].
inline constexpr float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

// Decodes `path` as RGB, resizes it (shorter side to `size` then centre crop; a direct resize
// to size x size; or padding to a square then resizing; area interpolation when shrinking,
// bilinear when enlarging), scales to
// [0, 1], normalizes, and writes 3 * size * size floats in CHW order to `out`.
// Throws ImageError when the file is missing, empty or not a decodable image.
void load_image(const std::string& path, const Preprocessing& prep, float* out);

// The same for a dataset's sample: its pixels from `prep.pixel_source` when the dataset keeps
// them, else its file. Errors (ImageError) name the sample's path.
void load_sample(const Sample& sample, const Preprocessing& prep, float* out);

// The sample as 8-bit RGB at its stored size (no resizing): what `kgain data` describes.
RgbImage read_rgb(const Sample& sample, const Dataset* pixel_source);

}  // namespace kgain::core
