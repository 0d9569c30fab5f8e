// Where the tiles of one slide lie: the geometry that turns "tile_size pixels at target_mpp"
// into level-0 boxes and a pyramid level to read, the grid, and the choice of tiles by tissue,
// label and count.
// Threads: plain functions without shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "slide.hpp"
#include "tissue.hpp"

namespace kgain::wsi {

struct TileGeometry {
  double extent_x = 0, extent_y = 0;             // a tile's size in level-0 pixels
  double step_x = 0, step_y = 0;                 // the stride in level-0 pixels
  int level = 0;                                 // the pyramid level read
  std::int64_t read_width = 0, read_height = 0;  // the region read at that level, resized to tile_size
};

// The geometry of tiles of `tile_size` pixels at `target_mpp`, `stride` pixels apart, on a slide
// with resolution `mpp`: reads from the coarsest level that is still at least as fine as the
// target (never upsampling more than 10 %). Throws when the target is finer than the scan.
TileGeometry tile_geometry(const Slide& slide, const Resolution& mpp, int tile_size, double target_mpp, int stride);

// The level to make the tissue mask from: at most 16 million pixels, and fine enough that a
// tile covers at least 8 x 8 mask pixels when the pyramid allows it.
int mask_level(const Slide& slide, const TileGeometry& geometry);

struct TilePosition {
  std::int64_t x = 0, y = 0;  // level-0 top-left corner
};

// Every tile of the grid that lies wholly inside the slide, in raster order.
std::vector<TilePosition> tile_grid(std::int64_t width, std::int64_t height, const TileGeometry& geometry);

// Keeps `count` of `positions` drawn with `seed` (the same on every machine: mt19937_64 and
// Fisher-Yates written out, not std::shuffle), in their original order; all when count <= 0.
std::vector<std::size_t> draw_tiles(std::size_t size, std::int64_t count, std::uint64_t seed);

}  // namespace kgain::wsi
