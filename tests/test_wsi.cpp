// The wsi dataset on slides made from real pathology pixels: tools/make_slides.py assembles
// BreakHis images into pyramidal tiled TIFFs (libvips) with a resolution of 0.5 um/px, GeoJSON
// regions over known rectangles, a tile manifest, a blank slide and one without resolution.
#include "test_support.hpp"
#include "test_plugins.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "config/config.hpp"
#include "plan/registry.hpp"
#include "study/run.hpp"
#include "plan/splits.hpp"

using namespace kgain;
using namespace kgain::core;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string slides_dir() { return test::generated_slides(); }

// A wsi dataset: tiles of 64 px at 1 um/px (128 level-0 pixels, read from level 1) unless `extra` says otherwise.
std::shared_ptr<Dataset> wsi(const std::string& slides, const std::map<std::string, Options::Value>& extra = {}) {
  Options options("dataset", "");
  options.set("slides", slides);
  options.set("tile_size", std::int64_t{64});
  options.set("target_mpp", 1.0);
  for (const auto& [k, v] : extra) options.set(k, v);
  return test::plugins().create<Dataset>("wsi", options);
}

std::string write_list(const std::string& name, const std::string& text) {
  const std::string path = slides_dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

struct Box {
  double x0, y0, x1, y1;
  bool contains(double x, double y) const { return x >= x0 && x < x1 && y >= y0 && y < y1; }
};
const Box benign_box{128, 128, 828, 588}, malignant_box{928, 128, 1628, 588}, hole{1178, 258, 1378, 458};

std::pair<std::int64_t, std::int64_t> position(const Sample& s) {
  const auto at = s.path.rfind('@'), comma = s.path.rfind(',');
  return {std::stoll(s.path.substr(at + 1, comma - at - 1)), std::stoll(s.path.substr(comma + 1))};
}

std::string slide_of(const Sample& s) { return s.path.substr(0, s.path.rfind('@')); }

}  // namespace

TEST_CASE("wsi tiles a known slide on the expected grid, and each tile holds the slide's pixels", "[wsi]") {
  const std::string list = write_list("exact.csv", "slide,label\nexact.tif,tissue\n");
  auto all = wsi(list, {{"tissue", false}});
  const auto samples = all->samples();
  // 1756 x 716 level-0 pixels, tiles of 128: 13 columns, 5 rows, in raster order.
  REQUIRE(samples.size() == 13 * 5);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CHECK(position(samples[i]) == std::make_pair<std::int64_t, std::int64_t>(128 * static_cast<std::int64_t>(i % 13),
                                                                             128 * static_cast<std::int64_t>(i / 13)));
    CHECK(samples[i].group == "exact.tif");
  }
  CHECK_THAT(all->data_report(), Contains("tiff.XResolution/YResolution (centimeter)") && Contains("0.5 x 0.5"));
  // Overlapping tiles: a stride of 32 target pixels is 64 level-0 pixels.
  const auto overlapping = wsi(list, {{"tissue", false}, {"overlap", std::int64_t{32}}})->samples();
  REQUIRE(overlapping.size() == 26 * 10);  // (1756 - 128) / 64 + 1 columns, (716 - 128) / 64 + 1 rows
  CHECK(position(overlapping[27]) == std::make_pair<std::int64_t, std::int64_t>(64, 64));

  // Pixels: level 1 of the lossless slide is vips's 2 x 2 mean of level 0 (exact.png).
  cv::Mat source;
  cv::cvtColor(cv::imread(slides_dir() + "/exact.png", cv::IMREAD_COLOR), source, cv::COLOR_BGR2RGB);
  REQUIRE((source.cols == 1756 && source.rows == 716));
  for (std::size_t i : {0u, 14u, 20u, 33u, 64u}) {
    RgbImage tile;
    REQUIRE(all->read_pixels(samples[i], tile));
    REQUIRE((tile.width == 64 && tile.height == 64));
    const auto [x, y] = position(samples[i]);
    cv::Mat expected;
    cv::resize(source(cv::Rect(static_cast<int>(x), static_cast<int>(y), 128, 128)), expected, {64, 64}, 0, 0,
               cv::INTER_AREA);
    const cv::Mat got(64, 64, CV_8UC3, tile.pixels.data());
    cv::Mat diff;
    cv::absdiff(got, expected, diff);
    double worst = 0;
    cv::minMaxLoc(diff.reshape(1), nullptr, &worst);
    CAPTURE(i, x, y);
    CHECK(worst <= 1.0);  // rounding of the two means
  }

  // At 0.75 um/px the tile is 96 level-0 pixels, read from level 0 and shrunk: OpenCV's area
  // resampling of the same pixels, exactly.
  auto fine = wsi(list, {{"tissue", false}, {"target_mpp", 0.75}});
  const auto fine_samples = fine->samples();
  REQUIRE(fine_samples.size() == 18 * 7);  // floor(1756 / 96) x floor(716 / 96)
  RgbImage tile;
  REQUIRE(fine->read_pixels(fine_samples[20], tile));
  const auto [x, y] = position(fine_samples[20]);
  CHECK((x == 96 * 2 && y == 96));
  cv::Mat expected;
  cv::resize(source(cv::Rect(static_cast<int>(x), static_cast<int>(y), 96, 96)), expected, {64, 64}, 0, 0,
             cv::INTER_AREA);
  CHECK(std::equal(tile.pixels.begin(), tile.pixels.end(), expected.datastart));

  // The tissue mask drops the white margin and the gap between the two images.
  auto tissue = wsi(list, {{"tissue_threshold", std::int64_t{8}}});
  std::size_t inside = 0;
  for (const auto& s : tissue->samples()) {
    const auto [tx, ty] = position(s);
    const Box tile_box{static_cast<double>(tx), static_cast<double>(ty), tx + 128.0, ty + 128.0};
    const auto overlap = [&](const Box& b) {
      return std::max(0.0, std::min(b.x1, tile_box.x1) - std::max(b.x0, tile_box.x0)) *
             std::max(0.0, std::min(b.y1, tile_box.y1) - std::max(b.y0, tile_box.y0));
    };
    CAPTURE(tx, ty);
    CHECK(overlap(benign_box) + overlap(malignant_box) >=
          0.5 * 128 * 128 * 0.8);  // half the tile is tissue, and tissue lies in the images
    inside += overlap(benign_box) + overlap(malignant_box) == 128 * 128;
  }
  CHECK(inside >= 20);  // of the 27 tiles wholly inside the two images ((5 + 4 columns) x 3 rows); 23 when written
}

TEST_CASE("wsi labels tiles from GeoJSON regions: centre inside a polygon, holes excluded", "[wsi]") {
  auto dataset = wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("annotations")}, {"tissue", false}});
  const auto classes = dataset->class_names();
  REQUIRE(classes == std::vector<std::string>{"benign", "malignant"});
  std::map<std::string, std::set<std::pair<std::int64_t, std::int64_t>>> got;
  for (const auto& s : dataset->samples()) {
    const auto [x, y] = position(s);
    const double cx = x + 64.0, cy = y + 64.0;
    CAPTURE(s.path);
    if (s.label == 0)
      CHECK(benign_box.contains(cx, cy));
    else
      CHECK((malignant_box.contains(cx, cy) && !hole.contains(cx, cy)));
    if (slide_of(s).find("mixed_1.tif") != std::string::npos)
      got[classes[static_cast<std::size_t>(s.label)]].insert({x, y});
    CHECK(s.group == "M" + s.path.substr(s.path.rfind('/') + 7, 1));  // the patient column of mixed.csv: mixed_N is MN
  }
  // Every grid tile whose centre lies in a region is there.
  std::size_t benign = 0, malignant = 0;
  for (std::int64_t y = 0; y + 128 <= 716; y += 128)
    for (std::int64_t x = 0; x + 128 <= 1756; x += 128) {
      benign += benign_box.contains(x + 64.0, y + 64.0);
      malignant += malignant_box.contains(x + 64.0, y + 64.0) && !hole.contains(x + 64.0, y + 64.0);
    }
  CHECK(got["benign"].size() == benign);
  CHECK(got["malignant"].size() == malignant);
  CHECK(malignant > 0);
  CHECK_THAT(dataset->data_report(), Contains("1 unclassified annotation(s) and 1 point/line annotation(s) ignored"));

  // A share of the area instead of the centre: fewer tiles, each mostly inside its region.
  auto strict = wsi(slides_dir() + "/mixed.csv",
                    {{"labels", std::string("annotations")}, {"tissue", false}, {"annotation_share", 0.9}});
  CHECK(strict->samples().size() < dataset->samples().size());
  CHECK(!strict->samples().empty());

  // An unknown class is an error that says what to do; a class can be ignored.
  REQUIRE_THROWS_WITH(wsi(slides_dir() + "/mixed.csv",
                          {{"labels", std::string("annotations")}, {"classes", Options::List{std::string("benign")}}}),
                      Contains("'malignant'") && Contains("ignore_classes"));
  auto only_benign = wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("annotations")},
                                                       {"tissue", false},
                                                       {"classes", Options::List{std::string("benign")}},
                                                       {"ignore_classes", Options::List{std::string("malignant")}}});
  CHECK(only_benign->samples().size() == 4 * benign);

  // Malformed GeoJSON: the file and the problem.
  const fs::path bad = fs::path(slides_dir()) / "bad-annotations";
  fs::create_directories(bad);
  for (int i = 1; i <= 4; ++i)
    fs::copy_file(slides_dir() + "/mixed_" + std::to_string(i) + ".geojson",
                  bad / ("mixed_" + std::to_string(i) + ".geojson"), fs::copy_options::overwrite_existing);
  std::ofstream(bad / "mixed_2.geojson")
      << R"({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0)";
  REQUIRE_THROWS_WITH(
      wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("annotations")}, {"annotations", bad.string()}}),
      Contains("mixed_2.geojson: not valid JSON"));
  std::ofstream(bad / "mixed_2.geojson")
      << R"({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0]]]}, "properties": {"classification": {"name": "benign"}}}]})";
  REQUIRE_THROWS_WITH(
      wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("annotations")}, {"annotations", bad.string()}}),
      Contains("mixed_2.geojson: feature 0: a polygon ring needs at least 3"));
  // Found by fuzz_wsi_tables: a number beyond a double's range (nlohmann's out_of_range, not a parse_error).
  std::ofstream(bad / "mixed_2.geojson")
      << R"({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [10, 6633e66333333333333332]]]}}]})";
  REQUIRE_THROWS_WITH(
      wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("annotations")}, {"annotations", bad.string()}}),
      Contains("mixed_2.geojson: not valid JSON") && Contains("number overflow"));
  std::ofstream(bad / "mixed_2.geojson") << std::string(100000, '[');
  REQUIRE_THROWS_WITH(
      wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("annotations")}, {"annotations", bad.string()}}),
      Contains("nested deeper than 64"));
  fs::remove(bad / "mixed_2.geojson");
  REQUIRE_THROWS_WITH(
      wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("annotations")}, {"annotations", bad.string()}}),
      Contains("no annotation file") && Contains("mixed_2.geojson"));
}

TEST_CASE("wsi reads a tile manifest at level-0 coordinates, and refuses tiles off the slide or listed twice",
          "[wsi]") {
  auto dataset =
      wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("tiles")}, {"tiles", slides_dir() + "/tiles.csv"}});
  const auto samples = dataset->samples();
  REQUIRE(samples.size() == 4 * 18);
  for (const auto& s : samples) {
    const auto [x, y] = position(s);
    CHECK(dataset->class_names()[static_cast<std::size_t>(s.label)] == (x < 900 ? "benign" : "malignant"));
  }
  const std::string off = write_list("tiles-off.csv", "slide,x,y,label\nmixed_1.tif,1700,100,benign\n");
  REQUIRE_THROWS_WITH(wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("tiles")}, {"tiles", off}}),
                      Contains("tiles-off.csv") && Contains("reaches past the slide's 1756 x 716 pixels"));
  const std::string twice =
      write_list("tiles-twice.csv", "slide,x,y,label\nmixed_1.tif,100,100,benign\nmixed_1.tif,100,100,malignant\n");
  REQUIRE_THROWS_WITH(wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("tiles")}, {"tiles", twice}}),
                      Contains("tiles-twice.csv:3") && Contains("listed twice"));
  const std::string unknown = write_list("tiles-unknown.csv", "slide,x,y,label\nother.tif,100,100,benign\n");
  REQUIRE_THROWS_WITH(wsi(slides_dir() + "/mixed.csv", {{"labels", std::string("tiles")}, {"tiles", unknown}}),
                      Contains("'other.tif', which is not in the slide list"));
  const std::string typo = write_list("slides-typo.csv", "slide,label,patiend\nmixed_1.tif,benign,P1\n");
  REQUIRE_THROWS_WITH(wsi(typo), Contains("unknown column 'patiend'") && Contains("patient"));
}

TEST_CASE(
    "wsi: a slide without resolution, an unreadable slide and a slide without tissue are errors or listed as skipped",
    "[wsi]") {
  const std::string missing =
      write_list("no-mpp.csv", "slide,label\nno_resolution.tif,benign\nmixed_1.tif,malignant\n");
  REQUIRE_THROWS_WITH(wsi(missing), Contains("no_resolution.tif: the slide's metadata gives no resolution") &&
                                        Contains("`mpp` column"));
  const std::string given =
      write_list("mpp-given.csv", "slide,label,mpp\nno_resolution.tif,benign,0.5\nmixed_1.tif,malignant,\n");
  auto with_mpp = wsi(given, {{"tissue_threshold", std::int64_t{8}}});
  CHECK_THAT(with_mpp->data_report(), Contains("slide list"));
  CHECK(with_mpp->samples().size() > 20);

  std::ofstream(slides_dir() + "/broken.tif") << "II*\0 this is not a slide";
  const std::string broken =
      write_list("broken.csv", "slide,label\nbroken.tif,benign\nblank.tif,benign\nmixed_1.tif,malignant\n");
  REQUIRE_THROWS_WITH(wsi(broken), Contains("broken.tif") && Contains("on_bad_slide"));
  auto skipping = wsi(broken, {{"on_bad_slide", std::string("skip")}});
  const auto warnings = skipping->warnings();
  REQUIRE(warnings.size() == 2);
  CHECK_THAT(warnings[0], Contains("skipped broken.tif"));
  CHECK_THAT(warnings[1], Contains("blank.tif gives no tile: no tissue found"));
  for (const auto& s : skipping->samples()) CHECK_THAT(s.path, Contains("mixed_1.tif@"));

  // A resolution that is a writer's default, not a scan's, is refused too.
  const std::string silly = write_list("silly-mpp.csv", "slide,label,mpp\nmixed_1.tif,benign,500\n");
  REQUIRE_THROWS_WITH(wsi(silly), Contains("mpp") && Contains("outside"));
  // A target finer than the scan would need upsampling.
  REQUIRE_THROWS_WITH(wsi(slides_dir() + "/slides.csv", {{"target_mpp", 0.25}}), Contains("does not upsample"));
  REQUIRE_THROWS_WITH(wsi(slides_dir() + "/slides.csv", {{"magnification", 20.0}}),
                      Contains("target_mpp") && Contains("once"));
}

TEST_CASE("wsi groups tiles by patient or slide, so no split puts a slide on both sides", "[wsi]") {
  auto dataset = wsi(
      slides_dir() + "/slides.csv",
      {{"tissue_threshold", std::int64_t{8}}, {"max_tiles_per_slide", std::int64_t{20}}, {"seed", std::int64_t{3}}});
  const auto samples = dataset->samples();
  std::map<std::string, std::set<std::string>> groups_of_slide;
  std::map<std::string, int> per_slide;
  for (const auto& s : samples) groups_of_slide[slide_of(s)].insert(s.group), ++per_slide[slide_of(s)];
  REQUIRE(per_slide.size() == 8);
  for (const auto& [slide, n] : per_slide) CHECK(n == 20);  // max_tiles_per_slide
  CHECK(*groups_of_slide[slides_dir() + "/slide_benign_1.tif"].begin() == "P1");
  CHECK(*groups_of_slide[slides_dir() + "/slide_benign_2.tif"].begin() == "P1");  // one patient, two slides
  for (int folds : {2, 3}) {
    const SplitPlan plan = make_splits(samples, 2, "group_kfold", folds, 0);
    for (const auto& fold : plan.folds) {
      CHECK(leaking_groups(samples, fold).empty());
      std::set<std::string> train, test;
      for (auto i : fold.train) train.insert(slide_of(samples[static_cast<std::size_t>(i)]));
      for (auto i : fold.test) test.insert(slide_of(samples[static_cast<std::size_t>(i)]));
      for (const auto& s : test) CHECK(train.count(s) == 0);
    }
  }
  // The draw is the seed's: the same tiles again, other tiles with another seed.
  auto again = wsi(
      slides_dir() + "/slides.csv",
      {{"tissue_threshold", std::int64_t{8}}, {"max_tiles_per_slide", std::int64_t{20}}, {"seed", std::int64_t{3}}});
  auto other = wsi(
      slides_dir() + "/slides.csv",
      {{"tissue_threshold", std::int64_t{8}}, {"max_tiles_per_slide", std::int64_t{20}}, {"seed", std::int64_t{4}}});
  std::vector<std::string> a, b, c;
  for (const auto& s : samples) a.push_back(s.path);
  for (const auto& s : again->samples()) b.push_back(s.path);
  for (const auto& s : other->samples()) c.push_back(s.path);
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("wsi: a tile's identity is the slide's content and the tile's place, and a changed slide changes it",
          "[wsi]") {
  const fs::path dir = fs::path(slides_dir()) / "identity";
  fs::create_directories(dir);
  fs::copy_file(slides_dir() + "/mixed_1.tif", dir / "mixed_1.tif", fs::copy_options::overwrite_existing);
  std::ofstream(dir / "list.csv") << "slide,label\nmixed_1.tif,tissue\n";
  const auto identities = [&](const std::string& rule) {
    auto d = wsi((dir / "list.csv").string(), {{"tissue", false}, {"slide_identity", rule}});
    std::vector<std::uint64_t> out;
    for (const auto& s : d->samples()) {
      std::uint64_t id = 0;
      REQUIRE(d->content_identity(s, id));
      out.push_back(id);
    }
    return out;
  };
  const auto before = identities("content"), quick = identities("quick");
  CHECK(std::set<std::uint64_t>(before.begin(), before.end()).size() == before.size());  // each tile its own
  CHECK(identities("content") == before);
  std::ofstream(dir / "mixed_1.tif", std::ios::app) << "x";  // the same pixels to OpenSlide, other bytes
  const auto after = identities("content");
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) CHECK(after[i] != before[i]);
  CHECK(identities("quick") != quick);  // size and time changed
}

TEST_CASE("A study on whole slides runs end to end, keeps each slide on one side, and a rerun forwards no tile",
          "[wsi][end_to_end]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-wsi-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config_path = (dir / "wsi.toml").string();
  std::ofstream(config_path)
      << "[run]\nthreads = 2\nbatch_size = 64\n"
      << "[dataset]\nplugin = \"wsi\"\nslides = \"" << slides_dir()
      << "/slides.csv\"\ntile_size = 64\ntarget_mpp = 1.0\n"
      << "tissue_threshold = 8\nmax_tiles_per_slide = 24\n"
      << "[backbone]\nplugin = \"torchscript\"\nfile = \"" << test::models_dir()
      << "/mobilenet_v1_0.25_128_quant.ts.pt\"\n"
      << "native_input_size = 128\n[features]\ninput_size = 64\n[variants]\nrandom_seeds = [0]\n[splits]\nfolds = 3\n";
  const Config config = load_config(config_path);
  RunOptions options;
  options.out_dir = (dir / "run").string();
  const RunSummary first = run_study(config, options);
  CHECK(first.images == 8 * 24);
  CHECK(first.split_strategy == "group_kfold");
  CHECK(first.extraction.images_forwarded == 2 * 8 * 24);
  CHECK(test::lines(test::slurp(options.out_dir + "/gain.csv")).size() == 1 + 14 * 3);  // 14 taps x 3 default metrics
  const auto rows = test::lines(test::slurp(options.out_dir + "/splits.csv"));
  REQUIRE(rows.size() == 1 + 3 * 8 * 24);  // a row per fold and tile
  const RunSummary second = run_study(config, options);
  CHECK(second.extraction.images_forwarded == 0);
  for (std::size_t i = 0; i < first.gain.size(); ++i) CHECK(first.gain[i].pretrained == second.gain[i].pretrained);

  // Region labels: both classes on every slide, groups by patient, a study all the same.
  const std::string regions_path = (dir / "regions.toml").string();
  std::ofstream(regions_path)
      << "[run]\nthreads = 2\n[dataset]\nplugin = \"wsi\"\nslides = \"" << slides_dir()
      << "/mixed.csv\"\nlabels = \"annotations\"\n"
      << "tile_size = 64\ntarget_mpp = 1.0\ntissue = false\n[backbone]\nplugin = \"torchscript\"\nfile = \""
      << test::models_dir()
      << "/mobilenet_v1_0.25_128_quant.ts.pt\"\nnative_input_size = 128\n[features]\ninput_size = "
         "64\n[variants]\nrandom_seeds = [0]\n"
      << "[splits]\nfolds = 2\n";
  RunOptions regions_options;
  regions_options.out_dir = (dir / "regions").string();
  const RunSummary regions = run_study(load_config(regions_path), regions_options);
  CHECK(regions.images == static_cast<std::int64_t>(wsi(slides_dir() + "/mixed.csv",
                                                        {{"labels", std::string("annotations")}, {"tissue", false}})
                                                        ->samples()
                                                        .size()));
  CHECK(regions.split_strategy == "group_kfold");
  CHECK(regions.gain.size() == 14 * 3);
  fs::remove_all(dir);
}
