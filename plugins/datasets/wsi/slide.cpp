#include "slide.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <openslide/openslide.h>

namespace kgain::wsi {
namespace {

// A region larger than this is not a tile: 16k x 16k pixels, 1 GB of ARGB.
constexpr std::int64_t max_region_pixels = 16384LL * 16384LL;

std::string error_of(openslide_t* osr) {
  const char* e = osr ? openslide_get_error(osr) : nullptr;
  return e ? e : "";
}

std::optional<double> number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v) && v > 0) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

Slide::Slide(const std::string& path) : path_(path) {
  if (!openslide_detect_vendor(path.c_str()))
    throw std::runtime_error(
        path +
        ": not a slide OpenSlide can read (SVS, NDPI, MRXS, SCN, BIF, VMS, tiled pyramidal TIFF); "
        "a flat image can be made one with `vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg`");
  osr_ = openslide_open(path.c_str());
  if (!osr_) throw std::runtime_error(path + ": OpenSlide cannot open it");
  if (const std::string e = error_of(osr_); !e.empty()) {
    openslide_close(osr_);
    osr_ = nullptr;
    throw std::runtime_error(path + ": OpenSlide cannot read it (" + e + ")");
  }
  const int32_t levels = openslide_get_level_count(osr_);
  for (int32_t l = 0; l < levels; ++l) {
    int64_t w = 0, h = 0;
    openslide_get_level_dimensions(osr_, l, &w, &h);
    const double d = openslide_get_level_downsample(osr_, l);
    if (w <= 0 || h <= 0 || !(d >= 1)) {
      openslide_close(osr_);
      osr_ = nullptr;
      throw std::runtime_error(path + ": level " + std::to_string(l) + " has no valid size (a damaged slide?)");
    }
    width_.push_back(w), height_.push_back(h), downsample_.push_back(d);
  }
  if (levels <= 0) {
    openslide_close(osr_);
    osr_ = nullptr;
    throw std::runtime_error(path + ": OpenSlide finds no level in it");
  }
}

Slide::~Slide() {
  if (osr_) openslide_close(osr_);
}

std::string Slide::property(const std::string& name) const {
  const char* v = openslide_get_property_value(osr_, name.c_str());
  return v ? v : "";
}

std::optional<Resolution> Slide::resolution() const {
  const auto x = number(property(OPENSLIDE_PROPERTY_NAME_MPP_X)), y = number(property(OPENSLIDE_PROPERTY_NAME_MPP_Y));
  if (x && y) return Resolution{*x, *y, "openslide.mpp-x/y"};
  const auto rx = number(property("tiff.XResolution")), ry = number(property("tiff.YResolution"));
  const std::string unit = property("tiff.ResolutionUnit");
  const double microns = unit == "centimeter" ? 1e4 : unit == "inch" ? 25400.0 : 0;
  if (rx && ry && microns > 0)
    return Resolution{microns / *rx, microns / *ry, "tiff.XResolution/YResolution (" + unit + ")"};
  return std::nullopt;
}

void Slide::read_rgb(std::int64_t x, std::int64_t y, int level, std::int64_t width, std::int64_t height,
                     std::vector<std::uint8_t>& rgb) const {
  if (width <= 0 || height <= 0 || width * height > max_region_pixels)
    throw std::runtime_error(path_ + ": a region of " + std::to_string(width) + " x " + std::to_string(height) +
                             " pixels is not a tile");
  std::vector<std::uint32_t> argb(static_cast<std::size_t>(width * height));
  openslide_read_region(osr_, argb.data(), x, y, level, width, height);
  if (const std::string e = error_of(osr_); !e.empty())
    throw std::runtime_error(path_ + ": OpenSlide could not read the region at (" + std::to_string(x) + ", " +
                             std::to_string(y) + ") level " + std::to_string(level) + ": " + e);
  rgb.resize(argb.size() * 3);
  for (std::size_t i = 0; i < argb.size(); ++i) {
    // Premultiplied ARGB: over white, a channel is c + (255 - alpha).
    const std::uint32_t p = argb[i], white = 255 - (p >> 24);
    const auto over_white = [white](std::uint32_t c) {
      return static_cast<std::uint8_t>(std::min<std::uint32_t>(255, c + white));
    };
    rgb[3 * i] = over_white((p >> 16) & 0xff);
    rgb[3 * i + 1] = over_white((p >> 8) & 0xff);
    rgb[3 * i + 2] = over_white(p & 0xff);
  }
}

}  // namespace kgain::wsi
