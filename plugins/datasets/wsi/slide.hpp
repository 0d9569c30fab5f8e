// One whole-slide image opened with OpenSlide: its pyramid, its resolution, and RGB regions.
// Threads: OpenSlide (3.3.1 and later) reads regions of one handle from several threads at
// once, so read_rgb may be called concurrently; open and close from one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct _openslide;

namespace kgain::wsi {

struct Resolution {
  double mpp_x = 0, mpp_y = 0;  // microns per pixel at level 0
  std::string source;           // the metadata it came from, for `kgain data`
};

class Slide {
 public:
  // Throws std::runtime_error naming the file when OpenSlide cannot read it.
  explicit Slide(const std::string& path);
  ~Slide();
  Slide(const Slide&) = delete;
  Slide& operator=(const Slide&) = delete;

  const std::string& path() const { return path_; }
  int level_count() const { return static_cast<int>(width_.size()); }
  std::int64_t width(int level) const { return width_[static_cast<std::size_t>(level)]; }
  std::int64_t height(int level) const { return height_[static_cast<std::size_t>(level)]; }
  double downsample(int level) const { return downsample_[static_cast<std::size_t>(level)]; }
  std::string property(const std::string& name) const;  // "" when absent
  std::string vendor() const { return property("openslide.vendor"); }

  // From openslide.mpp-x/-y, else from tiff.XResolution/YResolution with tiff.ResolutionUnit
  // (OpenSlide 3.4 leaves generic TIFFs without openslide.mpp-x). Nothing when neither exists
  // or the unit is not a length.
  std::optional<Resolution> resolution() const;

  // The region of `width` x `height` pixels of `level` whose top-left corner is (x, y) in level-0
  // coordinates, as 8-bit RGB composited on white (transparent parts of a slide are background).
  void read_rgb(std::int64_t x, std::int64_t y, int level, std::int64_t width, std::int64_t height,
                std::vector<std::uint8_t>& rgb) const;

 private:
  std::string path_;
  _openslide* osr_ = nullptr;
  std::vector<std::int64_t> width_, height_;
  std::vector<double> downsample_;
};

}  // namespace kgain::wsi
