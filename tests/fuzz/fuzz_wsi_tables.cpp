// libFuzzer target: the text files the wsi dataset plugin reads besides the slides themselves
// (OpenSlide's readers are Debian's, not fuzzed here): GeoJSON region annotations, and the
// slide list and tile manifest CSVs. The first byte picks the reader.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "annotations.hpp"
#include "table.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] & 1) {
      const auto a = kgain::wsi::parse_annotations(text, "fuzz.geojson");
      for (const auto& r : a.regions) {
        if (r.rings.empty() || r.rings.front().size() < 3 || r.class_name.empty()) __builtin_trap();
        (void)r.contains((r.min_x + r.max_x) / 2, (r.min_y + r.max_y) / 2);
      }
      (void)kgain::wsi::classes_at(a, 10, 10);
    } else {
      const auto rows =
          kgain::wsi::parse_csv(text, "fuzz.csv", {"slide"}, {"label", "patient", "split", "mpp", "x", "y"});
      for (const auto& row : rows) {
        if (!row.fields.count("slide")) __builtin_trap();
        if (row.fields.count("x") && !row.fields.at("x").empty())
          (void)kgain::wsi::parse_int(row.fields.at("x"), 0, 1LL << 40, "x");
        if (row.fields.count("mpp") && !row.fields.at("mpp").empty())
          (void)kgain::wsi::parse_double(row.fields.at("mpp"), 0.02, 50, "mpp");
      }
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
