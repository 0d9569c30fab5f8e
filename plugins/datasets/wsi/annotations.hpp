// Region annotations as QuPath exports them: GeoJSON polygons with a classification name, in
// level-0 pixel coordinates of the slide. A tile takes the class of the polygon its centre lies
// in, or of the class covering at least a given share of its area.
//
// Accepted: a FeatureCollection, a single Feature, or a JSON array of Features (QuPath 0.1-0.2);
// geometries Polygon, MultiPolygon and GeometryCollections of them (rings after the first are
// holes). The class is properties.classification.name (QuPath), or properties.classification
// when it is a string. Unclassified features and points or lines are counted and skipped.
// Threads: read_annotations is a plain function; a loaded Annotations is read-only.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace kgain::wsi {

using Point = std::array<double, 2>;

struct Region {
  std::string class_name;
  std::vector<std::vector<Point>> rings;  // the first is the outline, the others holes
  double min_x = 0, min_y = 0, max_x = 0, max_y = 0;
  bool contains(double x, double y) const;  // even-odd rule over all rings
};

struct Annotations {
  std::vector<Region> regions;
  int unclassified = 0;  // features without a class name, skipped
  int not_polygons = 0;  // points and lines, skipped
};

// Parses GeoJSON text; `source` names it in messages. Malformed JSON, a geometry without
// coordinates, a non-finite coordinate, a ring of fewer than 3 points, nesting deeper than 64
// or more than 20 million points are errors naming the source and the feature.
Annotations parse_annotations(const std::string& text, const std::string& source);
// Reads a file of at most 512 MB and parses it.
Annotations read_annotations(const std::string& path);

// The class names of the regions that contain (x, y), each once, in region order.
std::vector<std::string> classes_at(const Annotations& annotations, double x, double y);

}  // namespace kgain::wsi
