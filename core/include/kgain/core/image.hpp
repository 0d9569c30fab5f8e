// Image decoding and preprocessing: file -> normalized float CHW, as torchvision would feed it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace kgain::core {

// A file that cannot be used as an image; the message names the file and the reason.
class ImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Preprocessing {
  std::int64_t size = 224;                   // output side in pixels
  std::string resize = "shorter_side_crop";  // or "stretch", or "pad" (to a square, with the ImageNet mean colour)
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

}  // namespace kgain::core
