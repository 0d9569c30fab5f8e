#include "annotations.hpp"

#include "table.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace kgain::wsi {
namespace {

using json = nlohmann::json;
constexpr std::size_t max_points = 20'000'000, max_bytes = 512u << 20;
constexpr int max_depth = 64;

// nlohmann's parser recurses over nesting; a few MB of '[' would exhaust the stack. The depth
// is checked on the raw text first (strings skipped).
void check_depth(const std::string& text, const std::string& source) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw std::runtime_error(source + ": nested deeper than " + std::to_string(max_depth) +
                                 " levels; not QuPath GeoJSON");
    } else if (c == ']' || c == '}')
      --depth;
  }
}

struct Reader {
  const std::string& source;
  Annotations out;
  std::size_t points = 0;

  [[noreturn]] void fail(std::size_t feature, const std::string& problem) const {
    throw std::runtime_error(source + ": feature " + std::to_string(feature) + ": " + problem);
  }

  std::vector<Point> ring(const json& j, std::size_t feature) {
    if (!j.is_array() || j.size() < 3) fail(feature, "a polygon ring needs at least 3 [x, y] points");
    std::vector<Point> r;
    for (const auto& p : j) {
      if (!p.is_array() || p.size() < 2 || !p[0].is_number() || !p[1].is_number())
        fail(feature, "a point is not [x, y]");
      const double x = p[0].get<double>(), y = p[1].get<double>();
      if (!std::isfinite(x) || !std::isfinite(y)) fail(feature, "a coordinate is not finite");
      r.push_back({x, y});
    }
    if ((points += r.size()) > max_points) fail(feature, "more than 20 million points in the file");
    return r;
  }

  void polygon(const json& coordinates, const std::string& cls, std::size_t feature) {
    if (!coordinates.is_array() || coordinates.empty()) fail(feature, "a Polygon needs an array of rings");
    Region region{cls, {}, INFINITY, INFINITY, -INFINITY, -INFINITY};
    for (const auto& r : coordinates) region.rings.push_back(ring(r, feature));
    for (const auto& p : region.rings.front()) {
      region.min_x = std::min(region.min_x, p[0]), region.max_x = std::max(region.max_x, p[0]);
      region.min_y = std::min(region.min_y, p[1]), region.max_y = std::max(region.max_y, p[1]);
    }
    out.regions.push_back(std::move(region));
  }

  void geometry(const json& g, const std::string& cls, std::size_t feature, bool nested) {
    if (!g.is_object() || !g.contains("type") || !g["type"].is_string()) fail(feature, "no geometry with a \"type\"");
    const std::string type = g["type"].get<std::string>();
    if (type == "GeometryCollection" && !nested) {
      if (!g.contains("geometries") || !g["geometries"].is_array())
        fail(feature, "a GeometryCollection without \"geometries\"");
      for (const auto& member : g["geometries"]) geometry(member, cls, feature, true);
      return;
    }
    if (type == "Point" || type == "MultiPoint" || type == "LineString" || type == "MultiLineString") {
      ++out.not_polygons;
      return;
    }
    if (!g.contains("coordinates")) fail(feature, "a " + type + " without \"coordinates\"");
    if (type == "Polygon")
      polygon(g["coordinates"], cls, feature);
    else if (type == "MultiPolygon" && g["coordinates"].is_array())
      for (const auto& p : g["coordinates"]) polygon(p, cls, feature);
    else
      fail(feature, "geometry type '" + type + "' is not a Polygon or MultiPolygon");
  }

  static std::string class_of(const json& feature) {
    if (!feature.contains("properties") || !feature["properties"].is_object()) return {};
    const json& p = feature["properties"];
    if (!p.contains("classification")) return {};
    const json& c = p["classification"];
    if (c.is_string()) return c.get<std::string>();
    if (c.is_object() && c.contains("name") && c["name"].is_string()) return c["name"].get<std::string>();
    return {};
  }

  void feature(const json& f, std::size_t index) {
    if (!f.is_object() || !f.contains("type") || f["type"] != "Feature") fail(index, "not a GeoJSON Feature");
    const std::string cls = class_of(f);
    if (cls.empty()) {
      ++out.unclassified;
      return;
    }
    if (!f.contains("geometry") || f["geometry"].is_null()) fail(index, "no geometry");
    geometry(f["geometry"], cls, index, false);
  }
};

}  // namespace

bool Region::contains(double x, double y) const {
  if (x < min_x || x > max_x || y < min_y || y > max_y) return false;
  bool inside = false;
  for (const auto& r : rings)
    for (std::size_t i = 0, j = r.size() - 1; i < r.size(); j = i++)
      if ((r[i][1] > y) != (r[j][1] > y) && x < (r[j][0] - r[i][0]) * (y - r[i][1]) / (r[j][1] - r[i][1]) + r[i][0])
        inside = !inside;
  return inside;
}

Annotations parse_annotations(const std::string& text, const std::string& source) {
  check_depth(text, source);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond double
    throw std::runtime_error(source + ": not valid JSON (" + e.what() + ")");
  }
  Reader reader{source, {}, 0};
  if (root.is_array()) {  // QuPath 0.2's export: a bare array of Features, and nothing else
    if (root.empty())
      throw std::runtime_error(source +
                               ": an empty JSON array, not GeoJSON (expected a FeatureCollection, a Feature or an "
                               "array of Features); a slide without annotations is {\"type\": \"FeatureCollection\", "
                               "\"features\": []}");
    for (std::size_t i = 0; i < root.size(); ++i) reader.feature(root[i], i);
  } else if (root.is_object() && root.contains("type") && root["type"] == "FeatureCollection") {
    if (!root.contains("features") || !root["features"].is_array())
      throw std::runtime_error(source + ": a FeatureCollection without \"features\"");
    for (std::size_t i = 0; i < root["features"].size(); ++i) reader.feature(root["features"][i], i);
  } else if (root.is_object() && root.contains("type") && root["type"] == "Feature") {
    reader.feature(root, 0);
  } else {
    throw std::runtime_error(source +
                             ": not GeoJSON (expected a FeatureCollection, a Feature or an array of Features)");
  }
  return std::move(reader.out);
}

Annotations read_annotations(const std::string& path) {
  return parse_annotations(read_text(path, max_bytes, "an annotation file"), path);
}

std::vector<std::string> classes_at(const Annotations& annotations, double x, double y) {
  std::vector<std::string> out;
  for (const auto& r : annotations.regions)
    if (r.contains(x, y) && std::find(out.begin(), out.end(), r.class_name) == out.end()) out.push_back(r.class_name);
  return out;
}

}  // namespace kgain::wsi
