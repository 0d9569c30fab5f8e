#include "tiling.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <stdexcept>

namespace kgain::wsi {

TileGeometry tile_geometry(const Slide& slide, const Resolution& mpp, int tile_size, double target_mpp, int stride) {
  TileGeometry g;
  const double rx = target_mpp / mpp.mpp_x, ry = target_mpp / mpp.mpp_y;  // level-0 pixels per target pixel
  if (std::min(rx, ry) < 1 / 1.1) {
    std::ostringstream m;
    m << slide.path() << ": scanned at " << mpp.mpp_x << " x " << mpp.mpp_y << " microns per pixel (" << mpp.source
      << "), coarser than target_mpp = " << target_mpp
      << "; kgain does not upsample more than 10 % (choose a target_mpp of at least "
      << std::max(mpp.mpp_x, mpp.mpp_y) / 1.1 << ")";
    throw std::runtime_error(m.str());
  }
  g.extent_x = tile_size * rx, g.extent_y = tile_size * ry;
  g.step_x = stride * rx, g.step_y = stride * ry;
  for (int l = 0; l < slide.level_count(); ++l)
    if (slide.downsample(l) <= std::min(rx, ry) * 1.001) g.level = l;
  const double d = slide.downsample(g.level);
  g.read_width = std::max<std::int64_t>(1, std::llround(g.extent_x / d));
  g.read_height = std::max<std::int64_t>(1, std::llround(g.extent_y / d));
  return g;
}

int mask_level(const Slide& slide, const TileGeometry& geometry) {
  constexpr std::int64_t max_pixels = 16LL << 20;
  const double wanted = std::max(1.0, std::min(geometry.extent_x, geometry.extent_y) / 8);
  int best = -1;
  for (int l = 0; l < slide.level_count(); ++l) {
    if (slide.width(l) * slide.height(l) > max_pixels) continue;
    const bool fine_enough = slide.downsample(l) <= wanted;
    const bool best_fine = best >= 0 && slide.downsample(best) <= wanted;
    // Among the small-enough levels: the coarsest fine-enough one, else the finest.
    if (best < 0 || (fine_enough && (!best_fine || slide.downsample(l) > slide.downsample(best))) ||
        (!fine_enough && !best_fine && slide.downsample(l) < slide.downsample(best)))
      best = l;
  }
  if (best < 0)
    throw std::runtime_error(
        slide.path() + ": no pyramid level of at most 16 million pixels for the tissue mask (the smallest is " +
        std::to_string(slide.width(slide.level_count() - 1)) + " x " +
        std::to_string(slide.height(slide.level_count() - 1)) +
        "); write the slide with a pyramid (`vips tiffsave --tile --pyramid`) or set tissue = false");
  return best;
}

std::vector<TilePosition> tile_grid(std::int64_t width, std::int64_t height, const TileGeometry& g) {
  std::vector<TilePosition> out;
  const double columns = static_cast<double>(width) / g.step_x + 1, rows = static_cast<double>(height) / g.step_y + 1;
  if (columns * rows > 2e7)
    throw std::runtime_error(
        "a grid of " + std::to_string(static_cast<long long>(columns)) + " x " +
        std::to_string(static_cast<long long>(rows)) +
        " tiles; more than 20 million tiles on one slide (a larger stride or target_mpp, or a damaged slide)");
  for (std::int64_t j = 0;; ++j) {
    const double y = j * g.step_y;
    if (std::llround(y) + g.extent_y > static_cast<double>(height) + 1e-6) break;
    for (std::int64_t i = 0;; ++i) {
      const double x = i * g.step_x;
      if (std::llround(x) + g.extent_x > static_cast<double>(width) + 1e-6) break;
      out.push_back({std::llround(x), std::llround(y)});
    }
  }
  return out;
}

std::vector<std::size_t> draw_tiles(std::size_t size, std::int64_t count, std::uint64_t seed) {
  std::vector<std::size_t> order(size);
  for (std::size_t i = 0; i < size; ++i) order[i] = i;
  if (count <= 0 || static_cast<std::size_t>(count) >= size) return order;
  std::mt19937_64 rng(seed);
  for (std::size_t i = size - 1; i > 0; --i) std::swap(order[i], order[static_cast<std::size_t>(rng() % (i + 1))]);
  order.resize(static_cast<std::size_t>(count));
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace kgain::wsi
