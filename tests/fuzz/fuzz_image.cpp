// libFuzzer target: image decoding (JPEG, PNG, TIFF, BMP told by content) and resizing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "images/image.hpp"
#include "images/image_decode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const cv::Mat bgr = kgain::core::decode_image_bytes("fuzz", std::string(reinterpret_cast<const char*>(data), size));
    if (bgr.empty() || bgr.type() != CV_8UC3) __builtin_trap();  // success means a colour image
  } catch (const kgain::core::ImageError&) {
  }
  return 0;
}
