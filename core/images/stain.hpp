// Stain normalization for H&E images: the same tissue stained in two labs differs in colour,
// and a network sees the colour. Two classic methods map an image to a reference image:
//   Reinhard et al. (2001): match the per-channel mean and standard deviation in Lab colour;
//   Macenko et al. (2009): estimate the haematoxylin and eosin stain vectors in optical density
//     (OD = -ln(I / 240)) from the plane of the two main directions of the tissue pixels' OD,
//     unmix each pixel into stain concentrations, rescale them to the reference's 99th
//     percentiles and remix with the reference's stain vectors.
// Images are 8-bit BGR (OpenCV's order), row-major, modified in place.
#pragma once

#include <array>
#include <string>

namespace kgain::core {

struct StainVectors {
  std::array<double, 3> haematoxylin{};  // unit OD vectors in RGB order
  std::array<double, 3> eosin{};
};

struct StainReference {
  std::string method;                           // "reinhard" or "macenko"
  std::string image;                            // the reference image's path
  std::array<double, 3> lab_mean{}, lab_std{};  // Reinhard
  StainVectors stains;                          // Macenko
  std::array<double, 2> max_concentration{};    // Macenko: 99th percentiles of H and E
};

// Throws std::runtime_error (naming the file) for an unreadable reference or one without
// enough tissue to estimate stain vectors.
StainReference make_stain_reference(const std::string& method, const std::string& reference_image);

void normalize_stain(unsigned char* bgr, int height, int width, const StainReference& reference);

// Macenko's stain vectors of an image (haematoxylin first: the larger red OD component).
// Throws when fewer than 100 pixels have tissue (OD >= 0.15 in every channel).
StainVectors macenko_stain_vectors(const unsigned char* bgr, int height, int width);

}  // namespace kgain::core
