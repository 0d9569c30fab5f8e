// Image files to 8-bit BGR pixels, for files nobody vouches for.
//
// The format is told by the file's first bytes (a PNG named .jpg is a PNG). Before any pixel
// is decoded, the header's dimensions are checked against max_image_pixels, so a small file
// that declares a gigapixel image costs nothing. Damage is an error, never a picture with
// grey rows: JPEGs are decoded by libjpeg with its corrupt-data warnings turned into errors
// (a half file with an end marker glued on is caught; trailing bytes after a whole image are
// not an error), PNGs must have every chunk whole with a correct CRC up to IEND. JPEG EXIF
// orientation is ignored, as PIL and torchvision do.
// Threads: safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <string>

#include <opencv2/core/mat.hpp>

#include "images/image.hpp"

namespace kgain::core {

// Images larger than this are refused before decoding (a whole-slide image needs tiling).
inline constexpr std::int64_t max_image_pixels = 100'000'000;
inline constexpr std::uintmax_t max_image_file_bytes = 1ULL << 30;

// Throws ImageError naming `path` (which `bytes` were read from) and what is wrong.
cv::Mat decode_image_bytes(const std::string& path, const std::string& bytes);
cv::Mat decode_image_file(const std::string& path);

}  // namespace kgain::core
