// Dataset `wsi`: tiles of whole-slide images (SVS, NDPI, MRXS, SCN, tiled pyramidal TIFF, ...)
// read with OpenSlide, at a resolution given in microns per pixel, with a tissue mask, labelled
// by slide, by GeoJSON region annotations (QuPath) or by a tile manifest. The slide, or the
// patient when given, is the group, so that no split puts one slide on both sides.
// docs/user-guide.md ("Whole-slide images") explains the options; docs/config.md lists them.
//
// A tile is the sample "<slide path>@<x>,<y>" (level-0 top-left corner). Its pixels are read
// on demand from the best pyramid level and resized to tile_size (read_pixels); its identity
// for the feature cache is the slide's content hash with the level, position and sizes
// (content_identity), so tiles are not read twice and a changed slide recomputes its tiles.
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

#include <opencv2/imgproc.hpp>

#include <kgain/dataset.hpp>
#include <kgain/util/file_hash.hpp>
#include <kgain/util/group_pattern.hpp>
#include <kgain/plugin.hpp>

#include "annotations.hpp"
#include "slide.hpp"
#include "table.hpp"
#include "tiling.hpp"
#include "tissue.hpp"

namespace fs = std::filesystem;
using namespace kgain::wsi;

namespace {

const std::set<std::string> slide_extensions{".svs", ".tif", ".tiff", ".ndpi",    ".vms",
                                             ".vmu", ".scn", ".mrxs", ".svslide", ".bif"};

struct SlideEntry {
  std::string name;  // as listed: relative to the list's folder (the group, and the key of the tile manifest)
  std::string path;  // as opened
  std::string label, patient, split;
  double mpp = 0;  // from the list; 0 when the slide's metadata gives it
  std::string where;
};

// What the plugin learnt about one slide, for tiles and for `kgain data`.
struct SlideState {
  SlideEntry entry;
  Resolution resolution;
  TileGeometry geometry;
  std::string skipped;  // why it has no tiles; empty when it has some
  double tissue_share = -1;
  int mask_threshold = -1;
  std::map<std::string, int> tiles_per_class;
  std::uint64_t quick_identity = 0;  // path, size, modification time, OpenSlide's quickhash-1
  mutable std::once_flag hashed;
  mutable std::uint64_t content = 0;
};

struct Tile {
  std::size_t slide;
  TilePosition position;
};

struct Settings {
  std::string labels;  // slide | annotations | tiles
  int tile_size = 224, stride = 224;
  double target_mpp = 0;
  bool tissue = true;
  double min_tissue = 0.5;
  int min_saturation = 15;
  int fixed_threshold = -1;  // a saturation given by the user; -1: Otsu per slide
  double annotation_share = 0;
  std::int64_t max_tiles = 0;
  std::uint64_t seed = 0;
  bool skip_bad = false, content_identity = true;
  std::vector<std::string> classes, ignore_classes;
  std::string annotation_dir, tile_manifest;
};

std::vector<SlideEntry> slides_from_csv(const std::string& file) {
  const std::string base = fs::path(file).parent_path().string();
  std::vector<SlideEntry> out;
  std::set<std::string> seen;
  for (const auto& row : read_csv(file, {"slide"}, {"label", "patient", "split", "mpp"})) {
    const std::string where = file + ":" + std::to_string(row.line);
    SlideEntry e;
    e.name = row.fields.at("slide");
    if (e.name.empty()) throw std::runtime_error(where + ": empty 'slide'");
    if (!seen.insert(e.name).second) throw std::runtime_error(where + ": the slide '" + e.name + "' is listed twice");
    e.path = fs::path(e.name).is_absolute() || base.empty() ? e.name : (fs::path(base) / e.name).string();
    e.label = row.fields.count("label") ? row.fields.at("label") : "";
    e.patient = row.fields.count("patient") ? row.fields.at("patient") : "";
    // As an empty group cell in a manifest: the slide would be a group of its own, free to land
    // on the other side of a split from the same patient's other slides.
    if (row.fields.count("patient") && e.patient.find_first_not_of(" \t") == std::string::npos)
      throw std::runtime_error(where + ": the slide '" + e.name +
                               "' has an empty 'patient' cell; fill it in (the patient's identifier), or drop the "
                               "column to group by slide or group_pattern");
    e.split = row.fields.count("split") ? row.fields.at("split") : "";
    if (!e.split.empty() && e.split != "train" && e.split != "valid" && e.split != "test")
      throw std::runtime_error(where + ": split '" + e.split + "'; use train, valid, test or leave it empty");
    if (row.fields.count("mpp") && !row.fields.at("mpp").empty())
      e.mpp = parse_double(row.fields.at("mpp"), 0.02, 50, where + ": mpp");
    e.where = where;
    out.push_back(std::move(e));
  }
  if (out.empty()) throw std::runtime_error(file + ": lists no slide");
  return out;
}

// Every slide file under `root`; its label is the name of the folder right under root (as the
// folder dataset does), empty for a slide at the top.
std::vector<SlideEntry> slides_from_folder(const std::string& root) {
  std::vector<SlideEntry> out;
  for (const auto& item : fs::recursive_directory_iterator(root)) {
    std::string ext = item.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!item.is_regular_file() || !slide_extensions.count(ext)) continue;
    SlideEntry e;
    e.name = fs::relative(item.path(), root).generic_string();
    e.path = item.path().string();
    const auto first = fs::path(e.name).begin();
    e.label = fs::path(e.name).has_parent_path() ? first->string() : "";
    e.where = e.path;
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const SlideEntry& a, const SlideEntry& b) { return a.name < b.name; });
  if (out.empty())
    throw std::runtime_error(root + ": holds no slide file (" + std::to_string(slide_extensions.size()) +
                             " extensions known: .svs, .tif, .ndpi, .mrxs, ...)");
  return out;
}

// The slide's bytes (and, for MRXS-like formats, the files of the folder named after it).
std::uint64_t hash_slide_content(const std::string& path) {
  kgain::Hash64 h(0x77736931);
  if (!kgain::hash_file(h, path)) throw std::runtime_error(path + ": cannot be read to identify it");
  const fs::path beside = fs::path(path).parent_path() / fs::path(path).stem();
  if (fs::is_directory(beside)) {
    std::vector<fs::path> files;
    for (const auto& f : fs::recursive_directory_iterator(beside))
      if (f.is_regular_file()) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) h.update(fs::relative(f, beside).generic_string()), kgain::hash_file(h, f.string());
  }
  return h.digest();
}

class WsiDataset : public kgain::Dataset {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("slides", nullptr,
                          "a slide list CSV (`slide` and optional `label`, `patient`, `split`, `mpp` columns; paths "
                          "relative to the CSV) or a folder of slides (one subfolder per class)")
          .required(),
      kgain::option::string("labels", "\"slide\"",
                            "where tile labels come from: `slide` (the slide's label), `annotations` (GeoJSON "
                            "regions), `tiles` (a tile manifest)")
          .one_of("slide|annotations|tiles"),
      kgain::option::path(
          "annotations", nullptr,
          "folder with one `<slide name>.geojson` per slide (QuPath export; `labels = \"annotations\"`)")
          .computed("the slides' folder"),
      kgain::option::path("tiles", nullptr, "tile manifest CSV `slide,x,y,label`, x and y the level-0 top-left corner")
          .computed("(required for `labels = \"tiles\"`)"),
      kgain::option::integer("tile_size", "224", "tile side in pixels at the target resolution").between(8, 4096),
      kgain::option::number("target_mpp", nullptr, "tile resolution in microns per pixel")
          .computed("(this or magnification)")
          .between(0.02, 100),
      kgain::option::number("magnification", nullptr,
                            "tile resolution as a magnification, read as 10 / magnification um/px (20 = 0.5)")
          .computed("(this or target_mpp)")
          .between(0.1, 500),
      kgain::option::integer("stride", nullptr, "distance between tiles in target pixels (give stride or overlap)")
          .computed("tile_size")
          .at_least(1),
      kgain::option::integer("overlap", "0", "overlap of neighbouring tiles in target pixels (give stride or overlap)"),
      kgain::option::boolean("tissue", nullptr, "keep only tiles with enough tissue")
          .computed("true (false with `labels = \"tiles\"`)"),
      kgain::option::string_or_integer("tissue_threshold", "\"otsu\"",
                                       "`otsu` (per slide, on HSV saturation of a low-resolution level) or a fixed "
                                       "saturation (CLAM's default: 8)")
          .one_of("otsu")
          .between(0, 255),
      kgain::option::integer("min_saturation", "15", "floor on Otsu's threshold, so a slide without tissue has none")
          .between(0, 255),
      kgain::option::number("min_tissue", "0.5", "share of a tile that must be tissue").between(0, 1),
      kgain::option::number("annotation_share", "0",
                            "0: a tile takes the class of the region its centre lies in; above 0: of the class "
                            "covering that share of it")
          .between(0, 1),
      kgain::option::strings("classes", nullptr, "label order (a label outside it is an error)")
          .computed("the labels found, sorted"),
      kgain::option::strings("ignore_classes", "[]", "annotation classes to leave out"),
      kgain::option::integer("max_tiles_per_slide", "0",
                             "at most that many tiles per slide, drawn with the seed; 0 = all")
          .at_least(0),
      kgain::option::integer("seed", "0", "seed of the draw of `max_tiles_per_slide`"),
      kgain::option::string("group_pattern", "\"\"",
                            "without a patient column, a regular expression on the slide name whose first group is "
                            "the group; else the slide is the group"),
      kgain::option::string("on_bad_slide", "\"error\"",
                            "`error` stops on an unreadable slide, a slide without resolution or annotations; `skip` "
                            "leaves it out and lists it")
          .one_of("error|skip"),
      kgain::option::string("slide_identity", "\"content\"",
                            "what cached tile features are keyed on: `content` (every byte of the slide) or `quick` "
                            "(path, size, time, OpenSlide's quickhash-1)")
          .one_of("content|quick"),
  };

  explicit WsiDataset(const kgain::Options& options) {
    read_settings(options);
    const std::string list = options.require_path("slides");
    if (fs::is_directory(list))
      entries_ = slides_from_folder(list);
    else if (fs::is_regular_file(list))
      entries_ = slides_from_csv(list);
    else
      throw options.error(
          "slides",
          "'" + list + "' is neither a slide list (CSV: slide,label,patient,split,mpp) nor a folder of slides");
    source_ = list;
    const kgain::GroupPattern pattern(options);
    if (settings_.labels == "tiles") read_tile_manifest();
    open_slides();
    assign_classes(options);
    for (std::size_t s = 0; s < slides_.size(); ++s) {
      try {
        add_tiles(s, pattern);
      } catch (const std::exception& e) {
        if (!settings_.skip_bad)
          throw std::runtime_error(std::string(e.what()) + " (on_bad_slide = \"skip\" leaves such slides out)");
        slides_[s]->skipped = e.what();
        warnings_.push_back("skipped " + slides_[s]->entry.name + ": " + e.what());
      }
    }
    if (samples_.empty())
      throw std::runtime_error("wsi: no tile in any of the " + std::to_string(slides_.size()) + " slides of '" +
                               source_ + "' (every slide skipped or without tissue/labels; `kgain data` lists why)");
  }

  std::vector<std::string> class_names() const override { return classes_; }
  std::vector<kgain::Sample> samples() const override { return samples_; }
  std::string description() const override {
    std::ostringstream d;
    d << "whole slides " << source_ << " (" << slides_.size() << " slides, tiles of " << settings_.tile_size
      << " px at " << settings_.target_mpp << " um/px)";
    return d.str();
  }

  bool read_pixels(const kgain::Sample& sample, kgain::RgbImage& out) const override {
    const Tile& tile = tile_of(sample);
    const SlideState& state = *slides_[tile.slide];
    const TileGeometry& g = state.geometry;
    std::vector<std::uint8_t> region;
    handle(tile.slide)->read_rgb(tile.position.x, tile.position.y, g.level, g.read_width, g.read_height, region);
    const int size = settings_.tile_size;
    out.height = out.width = size;
    out.pixels.resize(static_cast<std::size_t>(size) * size * 3);
    const cv::Mat source(static_cast<int>(g.read_height), static_cast<int>(g.read_width), CV_8UC3, region.data());
    cv::Mat target(size, size, CV_8UC3, out.pixels.data());
    if (g.read_width == size && g.read_height == size)
      source.copyTo(target);
    else
      cv::resize(source, target, target.size(), 0, 0, g.read_width > size ? cv::INTER_AREA : cv::INTER_LINEAR);
    return true;
  }

  bool content_identity(const kgain::Sample& sample, std::uint64_t& identity) const override {
    const Tile& tile = tile_of(sample);
    const SlideState& state = *slides_[tile.slide];
    std::call_once(state.hashed, [&] {
      state.content = settings_.content_identity ? hash_slide_content(state.entry.path) : state.quick_identity;
    });
    const TileGeometry& g = state.geometry;
    kgain::Hash64 h(0x74696c65);
    h.update("wsi tile v1: area below, linear above")
        .update_u64(state.content)
        .update_u64(static_cast<std::uint64_t>(g.level));
    for (std::int64_t v : {tile.position.x, tile.position.y, g.read_width, g.read_height,
                           static_cast<std::int64_t>(settings_.tile_size)})
      h.update_u64(static_cast<std::uint64_t>(v));
    identity = h.digest();
    return true;
  }

  std::vector<std::string> warnings() const override { return warnings_; }
  std::string data_report() const override;

 private:
  void read_settings(const kgain::Options& options);
  void read_tile_manifest();
  void open_slides();
  void open_slide(SlideState& state);
  void assign_classes(const kgain::Options& options);
  std::vector<std::string> labels_of(const SlideState& state, const std::vector<TilePosition>& grid) const;
  void add_tiles(std::size_t index, const kgain::GroupPattern& pattern);

  const Tile& tile_of(const kgain::Sample& sample) const {
    const auto it = tile_index_.find(sample.path);
    if (it == tile_index_.end()) throw std::runtime_error(sample.path + ": not a tile of this slide set");
    return tiles_[it->second];
  }

  // Open OpenSlide handles, most recently used first: a study of a thousand slides must not
  // hold a thousand handles (and their tile caches) at once; tiles come in slide order.
  std::shared_ptr<Slide> handle(std::size_t slide) const {
    std::lock_guard<std::mutex> lock(handles_mutex_);
    for (auto it = handles_.begin(); it != handles_.end(); ++it)
      if (it->first == slide) {
        handles_.splice(handles_.begin(), handles_, it);
        return it->second;
      }
    handles_.emplace_front(slide, std::make_shared<Slide>(slides_[slide]->entry.path));
    if (handles_.size() > 8) handles_.pop_back();
    return handles_.front().second;
  }

  Settings settings_;
  std::string source_;
  std::vector<SlideEntry> entries_;
  std::vector<std::unique_ptr<SlideState>> slides_;
  std::map<std::string, std::vector<std::pair<TilePosition, std::string>>>
      manifest_tiles_;                              // slide name -> tiles, labels
  std::map<std::string, Annotations> annotations_;  // slide name -> regions
  std::vector<std::string> classes_, warnings_;
  std::vector<Tile> tiles_;
  std::vector<kgain::Sample> samples_;
  std::unordered_map<std::string, std::size_t> tile_index_;
  mutable std::mutex handles_mutex_;
  mutable std::list<std::pair<std::size_t, std::shared_ptr<Slide>>> handles_;
};

void WsiDataset::read_settings(const kgain::Options& o) {
  Settings& s = settings_;
  s.labels = o.get_string("labels");
  s.tile_size = static_cast<int>(o.get_int("tile_size"));
  if (o.has("target_mpp") == o.has("magnification"))
    throw o.error(o.has("target_mpp") ? "magnification" : "target_mpp",
                  "give the tiles' resolution once: target_mpp (microns per pixel, e.g. 0.5) or magnification (e.g. "
                  "20, read as 10 / magnification um/px)");
  s.target_mpp = o.has("target_mpp") ? o.get_double("target_mpp", 0) : 10.0 / o.get_double("magnification", 0);
  if (o.has("stride") && o.has("overlap")) throw o.error("overlap", "give either stride or overlap, not both");
  s.stride = static_cast<int>(o.has("overlap") ? s.tile_size - o.get_int("overlap") : o.get_int("stride", s.tile_size));
  if (s.stride < 1 || s.stride > 16 * s.tile_size)
    throw o.error(o.has("overlap") ? "overlap" : "stride", "must leave a stride of 1 to 16 x tile_size pixels");
  s.tissue = o.get_bool("tissue", s.labels != "tiles");
  s.min_tissue = o.get_double("min_tissue");
  if (o.has("tissue_threshold") && std::holds_alternative<std::int64_t>(o.values().at("tissue_threshold")))
    s.fixed_threshold = static_cast<int>(o.get_int("tissue_threshold", 0));
  else
    o.get_string("tissue_threshold");  // "otsu", the one string the declaration accepts
  s.min_saturation = static_cast<int>(o.get_int("min_saturation"));
  s.annotation_share = o.get_double("annotation_share");
  s.max_tiles = o.get_int("max_tiles_per_slide");
  s.seed = static_cast<std::uint64_t>(o.get_int("seed"));
  s.skip_bad = o.get_string("on_bad_slide") == "skip";
  s.content_identity = o.get_string("slide_identity") == "content";
  s.classes = kgain::class_list_option(o);
  s.ignore_classes = o.get_string_list("ignore_classes");
  if (s.labels == "annotations")
    s.annotation_dir = o.get_path("annotations", "");
  else if (o.has("annotations"))
    throw o.error("annotations", "is read with labels = \"annotations\" only");
  if (s.labels == "tiles")
    s.tile_manifest = o.require_path("tiles");
  else if (o.has("tiles"))
    throw o.error("tiles", "is read with labels = \"tiles\" only");
}

void WsiDataset::read_tile_manifest() {
  std::set<std::string> seen;
  for (const auto& row : read_csv(settings_.tile_manifest, {"slide", "x", "y", "label"}, {})) {
    const std::string where = settings_.tile_manifest + ":" + std::to_string(row.line);
    const TilePosition p{parse_int(row.fields.at("x"), 0, 1LL << 40, where + ": x"),
                         parse_int(row.fields.at("y"), 0, 1LL << 40, where + ": y")};
    if (row.fields.at("label").empty()) throw std::runtime_error(where + ": empty label");
    if (!seen.insert(row.fields.at("slide") + "@" + std::to_string(p.x) + "," + std::to_string(p.y)).second)
      throw std::runtime_error(where + ": the tile at (" + std::to_string(p.x) + ", " + std::to_string(p.y) + ") of '" +
                               row.fields.at("slide") + "' is listed twice");
    manifest_tiles_[row.fields.at("slide")].emplace_back(p, row.fields.at("label"));
  }
  std::set<std::string> listed;
  for (const auto& e : entries_) listed.insert(e.name);
  for (const auto& [name, tiles] : manifest_tiles_)
    if (!listed.count(name))
      throw std::runtime_error(settings_.tile_manifest + ": tiles of '" + name + "', which is not in the slide list " +
                               source_);
}

void WsiDataset::open_slides() {
  for (const auto& entry : entries_) {
    auto state = std::make_unique<SlideState>();
    state->entry = entry;
    try {
      open_slide(*state);
    } catch (const std::exception& e) {
      if (!settings_.skip_bad)
        throw std::runtime_error(std::string(e.what()) + " (on_bad_slide = \"skip\" leaves such slides out)");
      state->skipped = e.what();
      warnings_.push_back("skipped " + entry.name + ": " + e.what());
    }
    slides_.push_back(std::move(state));
  }
}

void WsiDataset::open_slide(SlideState& state) {
  const SlideEntry& e = state.entry;
  if (settings_.labels == "slide" && e.label.empty())
    throw std::runtime_error(e.where + ": slide '" + e.name +
                             "' has no label (labels = \"slide\" needs a label column, or a folder per class)");
  const Slide slide(e.path);
  const auto metadata = slide.resolution();
  if (e.mpp > 0 && metadata) {
    // The list wins (it is the user's correction), but a disagreement this large is more often a
    // typo or a list for other scans: tiles would be cut at the wrong magnification.
    for (const double own : {metadata->mpp_x, metadata->mpp_y})
      if (std::abs(own - e.mpp) > 0.1 * own) {
        char text[160];
        std::snprintf(text, sizeof text, "%.4g um/px from the slide list, %.4g x %.4g um/px from the slide (%s)", e.mpp,
                      metadata->mpp_x, metadata->mpp_y, metadata->source.c_str());
        warnings_.push_back(e.where + ": " + e.name + ": the mpp column contradicts the slide's own resolution by " +
                            "more than 10%: " + text + "; the slide list's is used");
        break;
      }
  }
  if (e.mpp > 0)
    state.resolution = {e.mpp, e.mpp, "slide list"};
  else if (metadata)
    state.resolution = *metadata;
  else
    throw std::runtime_error(
        e.path +
        ": the slide's metadata gives no resolution (no openslide.mpp-x, no tiff.XResolution in a length unit); "
        "kgain does not guess one: give it in microns per pixel in an `mpp` column of the slide list");
  const Resolution& r = state.resolution;
  if (!(r.mpp_x >= 0.02 && r.mpp_x <= 50 && r.mpp_y >= 0.02 && r.mpp_y <= 50))
    throw std::runtime_error(
        e.path + ": a resolution of " + std::to_string(r.mpp_x) + " x " + std::to_string(r.mpp_y) + " um/px (from " +
        r.source + ") is no scan's (a writer's default?); give the true one in an `mpp` column of the slide list");
  state.geometry = tile_geometry(slide, r, settings_.tile_size, settings_.target_mpp, settings_.stride);
  kgain::Hash64 quick(0x71756963);
  quick.update(fs::absolute(e.path).string()).update_u64(fs::file_size(e.path));
  quick.update_u64(static_cast<std::uint64_t>(fs::last_write_time(e.path).time_since_epoch().count()))
      .update(slide.property("openslide.quickhash-1"));
  state.quick_identity = quick.digest();
  if (settings_.labels == "annotations") {
    const fs::path dir =
        settings_.annotation_dir.empty() ? fs::path(e.path).parent_path() : fs::path(settings_.annotation_dir);
    const fs::path file = dir / (fs::path(e.name).stem().string() + ".geojson");
    if (!fs::exists(file))
      throw std::runtime_error(e.path + ": no annotation file " + file.string() +
                               " (labels = \"annotations\": one <slide>.geojson per slide)");
    annotations_[e.name] = read_annotations(file.string());
  }
}

void WsiDataset::assign_classes(const kgain::Options& options) {
  std::set<std::string> found;
  for (const auto& s : slides_) {
    if (!s->skipped.empty()) continue;
    if (settings_.labels == "slide") found.insert(s->entry.label);
    if (const auto a = annotations_.find(s->entry.name); a != annotations_.end())
      for (const auto& r : a->second.regions) found.insert(r.class_name);
    if (const auto t = manifest_tiles_.find(s->entry.name); t != manifest_tiles_.end())
      for (const auto& tile : t->second) found.insert(tile.second);
  }
  for (const auto& c : settings_.ignore_classes) found.erase(c);
  if (settings_.classes.empty()) {
    classes_.assign(found.begin(), found.end());
    return;
  }
  classes_ = settings_.classes;
  for (const auto& c : found)
    if (std::find(classes_.begin(), classes_.end(), c) == classes_.end())
      throw options.error("classes", "the slides carry the class '" + c + "', which is not in `classes`; add it" +
                                         (settings_.labels == "annotations" ? " or name it in `ignore_classes`" : ""));
}

// The class of each grid tile ("" for none): the slide's, the annotation's or the manifest's.
std::vector<std::string> WsiDataset::labels_of(const SlideState& state, const std::vector<TilePosition>& grid) const {
  std::vector<std::string> labels(grid.size());
  const TileGeometry& g = state.geometry;
  if (settings_.labels == "slide") std::fill(labels.begin(), labels.end(), state.entry.label);
  if (settings_.labels == "tiles")
    for (std::size_t i = 0; i < grid.size(); ++i) labels[i] = manifest_tiles_.at(state.entry.name)[i].second;
  if (settings_.labels != "annotations") return labels;
  const Annotations& a = annotations_.at(state.entry.name);
  const bool centre = settings_.annotation_share <= 0;
  const int n = centre ? 1 : 8;  // the centre, or 8 x 8 points spread over the tile
  for (std::size_t i = 0; i < grid.size(); ++i) {
    std::map<std::string, int> votes;
    for (int yy = 0; yy < n; ++yy)
      for (int xx = 0; xx < n; ++xx) {
        const double x = grid[i].x + (xx + 0.5) * g.extent_x / n, y = grid[i].y + (yy + 0.5) * g.extent_y / n;
        for (const auto& c : classes_at(a, x, y)) ++votes[c];
      }
    for (const auto& c : settings_.ignore_classes) votes.erase(c);
    int best = 0, ties = 0;
    for (const auto& [c, v] : votes) {
      if (v > best)
        best = v, ties = 0, labels[i] = c;
      else if (v == best)
        ++ties;
    }
    // Two classes at the centre, or tied over the tile: no label rather than a guess.
    if (ties > 0 || best < std::max(1.0, settings_.annotation_share * n * n - 1e-9)) labels[i].clear();
  }
  return labels;
}

void WsiDataset::add_tiles(std::size_t index, const kgain::GroupPattern& pattern) {
  SlideState& state = *slides_[index];
  if (!state.skipped.empty()) return;
  const Slide slide(state.entry.path);
  std::vector<TilePosition> grid;
  if (settings_.labels == "tiles") {
    for (const auto& [p, label] : manifest_tiles_[state.entry.name]) {
      if (p.x + state.geometry.extent_x > slide.width(0) + 1e-6 ||
          p.y + state.geometry.extent_y > slide.height(0) + 1e-6)
        throw std::runtime_error(settings_.tile_manifest + ": the tile at (" + std::to_string(p.x) + ", " +
                                 std::to_string(p.y) + ") of '" + state.entry.name + "' reaches past the slide's " +
                                 std::to_string(slide.width(0)) + " x " + std::to_string(slide.height(0)) +
                                 " pixels (x, y: level-0 top-left corner)");
      grid.push_back(p);
    }
  } else {
    grid = tile_grid(slide.width(0), slide.height(0), state.geometry);
  }
  const auto labels = labels_of(state, grid);
  std::unique_ptr<TissueMask> mask;
  if (settings_.tissue) {
    const int level = mask_level(slide, state.geometry);
    std::vector<std::uint8_t> rgb;
    slide.read_rgb(0, 0, level, slide.width(level), slide.height(level), rgb);
    mask = std::make_unique<TissueMask>(tissue_mask(rgb, slide.width(level), slide.height(level),
                                                    static_cast<double>(slide.width(0)) / slide.width(level),
                                                    static_cast<double>(slide.height(0)) / slide.height(level),
                                                    settings_.min_saturation, settings_.fixed_threshold));
    state.tissue_share = mask->share(), state.mask_threshold = mask->threshold;
  }
  std::vector<std::size_t> kept;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const auto c = std::find(classes_.begin(), classes_.end(), labels[i]);
    if (labels[i].empty() || c == classes_.end()) continue;
    if (mask &&
        mask->share(grid[i].x, grid[i].y, state.geometry.extent_x, state.geometry.extent_y) < settings_.min_tissue)
      continue;
    kept.push_back(i);
  }
  kgain::Hash64 slide_seed(settings_.seed);
  for (std::size_t k : draw_tiles(kept.size(), settings_.max_tiles, slide_seed.update(state.entry.name).digest())) {
    const std::size_t i = kept[k];
    const int label = static_cast<int>(std::find(classes_.begin(), classes_.end(), labels[i]) - classes_.begin());
    std::string group = state.entry.patient;
    if (group.empty() && pattern.enabled()) group = pattern.group_of(state.entry.name).value_or("");
    if (group.empty()) group = state.entry.name;
    kgain::Sample sample{state.entry.path + "@" + std::to_string(grid[i].x) + "," + std::to_string(grid[i].y), label,
                         group, state.entry.split};
    tile_index_.emplace(sample.path, tiles_.size());
    tiles_.push_back({index, grid[i]});
    samples_.push_back(std::move(sample));
    ++state.tiles_per_class[labels[i]];
  }
  if (state.tiles_per_class.empty()) {
    state.skipped = grid.empty()                      ? "smaller than one tile"
                    : mask && state.tissue_share <= 0 ? "no tissue found"
                                                      : "no tile with a label and enough tissue";
    warnings_.push_back(state.entry.name + " gives no tile: " + state.skipped);
  }
}

std::string WsiDataset::data_report() const {
  std::ostringstream r;
  r << "slides: " << slides_.size() << ", tiles of " << settings_.tile_size << " px at " << settings_.target_mpp
    << " um/px, stride " << settings_.stride << " px; labels from " << settings_.labels << "; tissue: "
    << (settings_.tissue
            ? (settings_.fixed_threshold >= 0
                   ? "saturation >= " + std::to_string(settings_.fixed_threshold)
                   : "Otsu on saturation (floor " + std::to_string(settings_.min_saturation) + ")") +
                  ", at least " + std::to_string(static_cast<int>(std::lround(settings_.min_tissue * 100))) +
                  " % of a tile"
            : std::string("not checked"))
    << "\n";
  char line[512];
  std::snprintf(line, sizeof line, "  %-24s %-13s %-40s %5s %9s %8s %6s  %s\n", "slide", "um/px", "resolution from",
                "level", "threshold", "tissue", "tiles", "per class");
  r << line;
  for (const auto& s : slides_) {
    std::string per_class;
    int total = 0;
    for (const auto& [c, n] : s->tiles_per_class)
      per_class += (per_class.empty() ? "" : ", ") + c + " " + std::to_string(n), total += n;
    if (!s->skipped.empty()) per_class = "none: " + s->skipped;
    char mpp[32] = "-", tissue[32] = "-";
    if (s->resolution.mpp_x > 0)
      std::snprintf(mpp, sizeof mpp, "%.4g x %.4g", s->resolution.mpp_x, s->resolution.mpp_y);
    if (s->tissue_share >= 0) std::snprintf(tissue, sizeof tissue, "%.1f %%", 100 * s->tissue_share);
    std::snprintf(line, sizeof line, "  %-24s %-13s %-40s %5d %9d %8s %6d  %s\n", s->entry.name.c_str(), mpp,
                  s->resolution.source.c_str(), s->resolution.mpp_x > 0 ? s->geometry.level : -1, s->mask_threshold,
                  tissue, total, per_class.c_str());
    r << line;
  }
  for (const auto& [name, a] : annotations_)
    if (a.unclassified || a.not_polygons)
      r << "  " << name << ": " << a.unclassified << " unclassified annotation(s) and " << a.not_polygons
        << " point/line annotation(s) ignored\n";
  return r.str();
}

}  // namespace

KGAIN_LIBRARY(
    "wsi", kgain::make_plugin<WsiDataset>(
               "wsi", "1.0.0",
               "whole-slide images through OpenSlide: tiles at a resolution, tissue mask, slide/GeoJSON/tile labels"))
