#include "tissue.hpp"

#include <algorithm>
#include <cmath>

namespace kgain::wsi {

int otsu_threshold(const std::array<std::uint64_t, 256>& histogram) {
  double total = 0, sum = 0;
  for (int i = 0; i < 256; ++i)
    total += static_cast<double>(histogram[i]), sum += i * static_cast<double>(histogram[i]);
  double below = 0, below_sum = 0, best = -1;
  int threshold = 0;
  for (int t = 1; t < 256; ++t) {
    below += static_cast<double>(histogram[t - 1]);
    below_sum += (t - 1) * static_cast<double>(histogram[t - 1]);
    const double above = total - below;
    if (below == 0 || above == 0) continue;
    const double mean_below = below_sum / below, mean_above = (sum - below_sum) / above;
    const double between = below * above * (mean_below - mean_above) * (mean_below - mean_above);
    if (between > best) best = between, threshold = t;
  }
  return threshold;
}

TissueMask tissue_mask(const std::vector<std::uint8_t>& rgb, std::int64_t width, std::int64_t height, double scale_x,
                       double scale_y, int min_saturation, int fixed_threshold) {
  TissueMask mask;
  mask.width = width, mask.height = height, mask.scale_x = scale_x, mask.scale_y = scale_y;
  const std::size_t n = static_cast<std::size_t>(width * height);
  std::vector<std::uint8_t> saturation(n);
  std::array<std::uint64_t, 256> histogram{};
  for (std::size_t i = 0; i < n; ++i) {
    const int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    const int hi = std::max({r, g, b}), lo = std::min({r, g, b});
    saturation[i] = static_cast<std::uint8_t>(hi == 0 ? 0 : (255 * (hi - lo) + hi / 2) / hi);
    ++histogram[saturation[i]];
  }
  mask.threshold = fixed_threshold >= 0 ? fixed_threshold : std::max(otsu_threshold(histogram), min_saturation);
  mask.tissue.resize(n);
  for (std::size_t i = 0; i < n; ++i) mask.tissue[i] = saturation[i] >= mask.threshold ? 1 : 0;
  return mask;
}

double TissueMask::share() const {
  std::size_t count = 0;
  for (auto t : tissue) count += t;
  return tissue.empty() ? 0 : static_cast<double>(count) / static_cast<double>(tissue.size());
}

double TissueMask::share(double x, double y, double w, double h) const {
  // Mask pixel i covers [i * scale, (i + 1) * scale); its centre is (i + 0.5) * scale.
  const auto first = [](double start, double scale) {
    return static_cast<std::int64_t>(std::ceil(start / scale - 0.5));
  };
  const std::int64_t x0 = std::max<std::int64_t>(0, first(x, scale_x)),
                     y0 = std::max<std::int64_t>(0, first(y, scale_y));
  const std::int64_t x1 = std::min(width, first(x + w, scale_x)), y1 = std::min(height, first(y + h, scale_y));
  if (x1 <= x0 || y1 <= y0) {  // a tile smaller than a mask pixel: the pixel under its centre
    const auto cx = std::clamp<std::int64_t>(static_cast<std::int64_t>((x + w / 2) / scale_x), 0, width - 1);
    const auto cy = std::clamp<std::int64_t>(static_cast<std::int64_t>((y + h / 2) / scale_y), 0, height - 1);
    return tissue[static_cast<std::size_t>(cy * width + cx)];
  }
  std::size_t count = 0;
  for (std::int64_t yy = y0; yy < y1; ++yy)
    for (std::int64_t xx = x0; xx < x1; ++xx) count += tissue[static_cast<std::size_t>(yy * width + xx)];
  return static_cast<double>(count) / static_cast<double>((x1 - x0) * (y1 - y0));
}

}  // namespace kgain::wsi
