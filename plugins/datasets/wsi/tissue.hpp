// Tissue detection on a low-resolution level: Otsu's threshold on the HSV saturation, as CLAM
// and TRIDENT do. Glass and background are white or grey (saturation near 0), stained tissue is
// pink to purple. A floor on the threshold (`min_saturation`) keeps a slide without tissue from
// having its noise split in two and called tissue.
// Threads: plain functions; a TissueMask is read-only once made.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace kgain::wsi {

struct TissueMask {
  std::int64_t width = 0, height = 0;  // of the mask level
  double scale_x = 1, scale_y = 1;     // level-0 pixels per mask pixel
  int threshold = 0;                   // saturation (0-255) above which a pixel is tissue
  std::vector<std::uint8_t> tissue;    // 1 for tissue, row-major
  double share() const;                // tissue share of the whole slide
  // Share of tissue in the level-0 box [x, x + w) x [y, y + h), over the mask pixels whose centre lies in it.
  double share(double x, double y, double w, double h) const;
};

// Otsu's threshold of a 256-bin histogram: the value t that maximizes the between-class variance
// of {< t} and {>= t}.
int otsu_threshold(const std::array<std::uint64_t, 256>& histogram);

// The mask of an RGB image (row-major, 3 bytes per pixel) that covers the slide at the given
// scale: tissue is saturation >= max(Otsu's threshold, min_saturation), or >= fixed_threshold
// when that is 0 or more.
TissueMask tissue_mask(const std::vector<std::uint8_t>& rgb, std::int64_t width, std::int64_t height, double scale_x,
                       double scale_y, int min_saturation, int fixed_threshold = -1);

}  // namespace kgain::wsi
