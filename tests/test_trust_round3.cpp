// Trust, round three (issue 34): six paths that ended in a wrong or misattributed number with
// exit status 0, and inputs that passed without a word. Each test failed before its fix.
#include "test_support.hpp"
#include "test_plugins.hpp"
#include "trust_support.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "compare/paired_comparison.hpp"
#include "write/results.hpp"
#include "plan/splits.hpp"
#include <kgain/probe.hpp>

using namespace kgain;
using namespace kgain::core;
using namespace kgain::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// The .kgseg files of the space whose key.txt names `variant`.
std::vector<fs::path> segments_of(const fs::path& store, const std::string& variant) {
  std::vector<fs::path> out;
  for (const auto& space : fs::directory_iterator(store))
    if (read_bytes(space.path() / "key.txt").find("\nvariant " + variant + "\n") != std::string::npos)
      for (const auto& e : fs::directory_iterator(space.path()))
        if (e.path().extension() == ".kgseg") out.push_back(e.path());
  return out;
}

// Other real PCam patches of `cls` than the first `skip` (which pcam_folder copies).
std::vector<fs::path> other_patches(const std::string& cls, std::size_t skip) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(data_dir() + "/pcam-mini/" + cls)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return {files.begin() + static_cast<std::ptrdiff_t>(skip), files.end()};
}

void swap_files(const fs::path& a, const fs::path& b) {
  const std::string bytes_a = read_bytes(a), bytes_b = read_bytes(b);
  write_bytes(a, bytes_b), write_bytes(b, bytes_a);
}

fs::path predictions_file(const fs::path& run_dir) {
  for (const auto& e : fs::directory_iterator(run_dir / "predictions")) return e.path();
  FAIL("no predictions file in " << run_dir);
  throw;
}

}  // namespace

TEST_CASE("Trust round 3, 1: a segment swapped into another space's folder is set aside, not read as its features",
          "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("r3-spaces");
  const std::string config = study(folder_table(pcam_folder(dir, 8)));
  run(config, dir / "run");
  const std::string gain = read_bytes(dir / "run" / "gain.csv");
  const auto pretrained = segments_of(dir / "run" / "cache", "pretrained"),
             random = segments_of(dir / "run" / "cache", "random-0");
  REQUIRE(pretrained.size() == 1);
  REQUIRE(random.size() == 1);
  swap_files(pretrained[0], random[0]);  // what a cp merging two stores can do
  const RunSummary again = run(config, dir / "run");
  CHECK(again.extraction.images_from_store == 0);
  CHECK(again.extraction.images_forwarded == 16 * 2);
  CHECK(fs::exists(pretrained[0].string() + ".damaged"));
  CHECK(fs::exists(random[0].string() + ".damaged"));
  CHECK(read_bytes(dir / "run" / "gain.csv") == gain);  // before the fix: every gain with its sign flipped
  fs::remove_all(dir);
}

TEST_CASE(
    "Trust round 3, 2-4: compare --paired refuses predictions of another run, of other images, or images "
    "whose content changed",
    "[trust][compare]") {
  const fs::path dir = fresh_dir("r3-paired");
  const fs::path root = pcam_folder(dir, 8);
  const std::string config_a = study(folder_table(root)),
                    config_b = study(folder_table(root), "[probe]\nplugin = \"logistic\"\nC = 0.5\n");
  run(config_a, dir / "a");
  run(config_b, dir / "b");
  CHECK_NOTHROW(compare_runs({(dir / "a").string(), (dir / "b").string()}, PairedSettings{}));

  // 2: the predictions files of the two runs exchanged.
  swap_files(predictions_file(dir / "a"), predictions_file(dir / "b"));
  REQUIRE_THROWS_WITH(compare_runs({(dir / "a").string(), (dir / "b").string()}, PairedSettings{}),
                      Contains("was not made by the run in its directory") && Contains("another config.resolved.toml"));
  swap_files(predictions_file(dir / "a"), predictions_file(dir / "b"));

  // 3: the same config on other images with the same label pattern (the folder's files replaced
  // by other patches): its predictions copied into run a hold positions of other images.
  const fs::path other_root = dir / "other";
  for (const char* cls : {"0_no_tumor", "1_tumor"}) {
    fs::create_directories(other_root / cls);
    const auto others = other_patches(cls, 8);
    for (std::size_t i = 0; i < 8; ++i) fs::copy_file(others[i], other_root / cls / others[i].filename());
  }
  const fs::path moved = dir / "data-kept";
  fs::rename(root, moved);
  fs::rename(other_root, root);
  run(config_a, dir / "c");
  fs::rename(root, other_root);
  fs::rename(moved, root);
  fs::copy_file(predictions_file(dir / "c"), predictions_file(dir / "a"), fs::copy_options::overwrite_existing);
  REQUIRE_THROWS_WITH(compare_runs({(dir / "a").string(), (dir / "b").string()}, PairedSettings{}),
                      Contains("was not made by the run in its directory") && Contains("another splits.csv"));
  run(config_a, dir / "a");  // its own predictions again (features from the store)

  // 4: ten images replaced in place by other patches of their class: splits.csv is the same
  // byte for byte, the images are not.
  for (const char* cls : {"0_no_tumor", "1_tumor"}) {
    std::vector<fs::path> mine;
    for (const auto& e : fs::directory_iterator(root / cls)) mine.push_back(e.path());
    std::sort(mine.begin(), mine.end());
    const auto others = other_patches(cls, 8);
    for (std::size_t i = 0; i < 5; ++i) write_bytes(mine[i], read_bytes(others[i]));
  }
  run(config_b, dir / "b");
  REQUIRE(read_bytes(dir / "a" / "splits.csv") == read_bytes(dir / "b" / "splits.csv"));
  REQUIRE_THROWS_WITH(compare_runs({(dir / "a").string(), (dir / "b").string()}, PairedSettings{}),
                      Contains("had other content when") && Contains("cannot be compared image by image"));
  fs::remove_all(dir);
}

TEST_CASE("Trust round 3, 5: an empty patient cell in a slide list is an error naming the line", "[trust][wsi]") {
  Options options("dataset", "");
  const std::string list = generated_slides() + "/empty-patient.csv";
  std::ofstream(list) << "slide,label,patient\nmixed_1.tif,benign,P1\nmixed_2.tif,malignant,\n";
  options.set("slides", list);
  options.set("tile_size", std::int64_t{64});
  options.set("target_mpp", 1.0);
  REQUIRE_THROWS_WITH(plugins().create<Dataset>("wsi", options),
                      Contains("empty-patient.csv:3") && Contains("mixed_2.tif") && Contains("empty 'patient'"));
}

TEST_CASE("Trust round 3, 6: kNN with k above a fold's training images is refused, as scikit-learn does",
          "[trust][probe]") {
  Options options("probe", "");
  options.set("k", std::int64_t{20});
  auto knn = plugins().create<Probe>("knn", options);
  const at::Tensor x = at::randn({10, 4}), y = at::arange(10, at::kLong) % 2;
  REQUIRE_THROWS_WITH(knn->fit(x, y, 2, 0), Contains("k = 20") && Contains("10 training images"));
  Options fits("probe", "");
  fits.set("k", std::int64_t{10});
  CHECK_NOTHROW(plugins().create<Probe>("knn", fits)->fit(x, y, 2, 0));
}

TEST_CASE("Trust round 3: a fold that tests only classes it never trains on is an error before extraction",
          "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("r3-classes");
  const auto patches = other_patches("1_tumor", 0);
  for (int c = 0; c < 9; ++c) {  // nine classes of one image each
    fs::create_directories(dir / "data" / ("class" + std::to_string(c)));
    fs::copy_file(patches[static_cast<std::size_t>(c)], dir / "data" / ("class" + std::to_string(c)) / "a.png");
  }
  REQUIRE_THROWS_WITH(run(study(folder_table(dir / "data")), dir / "run"),
                      Contains("fold 0") && Contains("all of classes it has no training image of"));
  CHECK(!fs::exists(dir / "run" / "config.resolved.toml"));  // nothing claimed, nothing extracted
  fs::remove_all(dir);
}

TEST_CASE("Trust round 3: a safetensors file declaring an integer dtype for a float parameter is refused",
          "[trust][safetensors]") {
  std::string bytes = slurp(safetensors_fixtures() + "/weights.safetensors");
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  std::string forged_name;
  for (auto& [name, t] : header.items())
    if (name != "__metadata__" && t["dtype"] == "F32" && t["shape"].size() == 4 && forged_name.empty())
      t["dtype"] = "I32", forged_name = name;  // same size: the float bytes read as integers
  REQUIRE(!forged_name.empty());
  const std::string text = header.dump();
  const std::uint64_t n = text.size();
  const fs::path forged = fs::path(safetensors_fixtures()) / "int-dtype.safetensors";
  std::ofstream out(forged, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << text << bytes.substr(8 + header_size);
  out.close();
  Options options("backbone", "");
  options.set("architecture", std::string("mobilenet_v1"));
  options.set("width", 0.25);
  options.set("padding", std::string("tf_same"));
  options.set("weights", forged.string());
  REQUIRE_THROWS_WITH(plugins().create<Backbone>("native", options),
                      Contains(forged_name + " (file Int") && Contains("integer type"));
}

TEST_CASE("Trust round 3: a slide list's mpp that contradicts the slide's own by more than 10% is a warning",
          "[trust][wsi]") {
  const std::string list = generated_slides() + "/mpp-contradicts.csv";
  std::ofstream(list) << "slide,label,mpp\nmixed_1.tif,benign,0.8\nmixed_2.tif,malignant,0.52\n";
  Options options("dataset", "");
  options.set("slides", list);
  options.set("tile_size", std::int64_t{64});
  options.set("target_mpp", 1.0);
  options.set("tissue_threshold", std::int64_t{8});
  const auto warnings = plugins().create<Dataset>("wsi", options)->warnings();
  REQUIRE(warnings.size() == 1);  // 0.52 is within 10% of the slides' 0.5 um/px
  CHECK_THAT(warnings[0], Contains("mpp-contradicts.csv:2") && Contains("0.8 um/px from the slide list") &&
                              Contains("0.5 x 0.5 um/px from the slide"));
}

TEST_CASE("Trust round 3: GeoJSON that is an empty array is refused, QuPath's array of Features is read",
          "[trust][wsi]") {
  const fs::path folder = fs::path(generated_slides()) / "r3-annotations";
  fs::create_directories(folder);
  for (int i = 1; i <= 4; ++i)
    fs::copy_file(generated_slides() + "/mixed_" + std::to_string(i) + ".geojson",
                  folder / ("mixed_" + std::to_string(i) + ".geojson"), fs::copy_options::overwrite_existing);
  Options options("dataset", "");
  options.set("slides", generated_slides() + "/mixed.csv");
  options.set("tile_size", std::int64_t{64});
  options.set("target_mpp", 1.0);
  options.set("labels", std::string("annotations"));
  options.set("annotations", folder.string());
  // QuPath 0.2 writes the FeatureCollection's features as a bare array: the same tiles.
  const auto collection = nlohmann::json::parse(slurp((folder / "mixed_2.geojson").string()));
  const std::size_t tiles = plugins().create<Dataset>("wsi", options)->samples().size();
  std::ofstream(folder / "mixed_2.geojson") << collection["features"].dump();
  CHECK(plugins().create<Dataset>("wsi", options)->samples().size() == tiles);
  std::ofstream(folder / "mixed_2.geojson") << "[]";
  REQUIRE_THROWS_WITH(plugins().create<Dataset>("wsi", options),
                      Contains("mixed_2.geojson: an empty JSON array, not GeoJSON"));
  std::ofstream(folder / "mixed_2.geojson") << "[1, 2]";
  REQUIRE_THROWS_WITH(plugins().create<Dataset>("wsi", options), Contains("not a GeoJSON Feature"));
  fs::remove_all(folder);
}

TEST_CASE("Trust round 3: group_kfold on images without groups, classes = [] and an empty manifest path are errors",
          "[trust][config]") {
  std::vector<Sample> samples;
  for (int i = 0; i < 8; ++i) samples.push_back({"img" + std::to_string(i) + ".png", i % 2, "", ""});
  REQUIRE_THROWS_WITH(make_splits(samples, 2, "group_kfold", 2, 0),
                      Contains("group_kfold") && Contains("no image a group") && Contains("strategy = \"kfold\""));
  CHECK(make_splits(samples, 2, "auto", 2, 0).strategy == "kfold");  // auto without groups stays a k-fold

  Options classes("dataset", "");
  classes.set("root", data_dir() + "/pcam-mini");
  classes.set("classes", Options::List{});
  REQUIRE_THROWS_WITH(plugins().create<Dataset>("folder", classes), Contains("classes") && Contains("empty list"));

  const fs::path dir = fresh_dir("r3-manifest");
  const fs::path root = pcam_folder(dir, 4);
  std::ofstream(root / "manifest.csv") << "path,label\n0_no_tumor/"
                                       << other_patches("0_no_tumor", 0)[0].filename().string()
                                       << ",0_no_tumor\n,1_tumor\n";
  for (const std::string mode : {"fail", "skip"})
    REQUIRE_THROWS_WITH(run(study("[dataset]\nplugin = \"manifest\"\nroot = \"" + root.string() +
                                  "\"\non_bad_image = \"" + mode + "\"\n"),
                            dir / ("run-" + mode)),
                        Contains("manifest.csv:3") && Contains("the path is empty"));
  fs::remove_all(dir);
}

TEST_CASE("Trust round 3: the console table prints dashes for undefined numbers and fits long tap names",
          "[trust][results]") {
  GainRow row;
  row.probe = "logistic", row.metric = "accuracy", row.tap = "encoder.layers.encoder_layer_11", row.tap_index = 11;
  row.pretrained = 0.81, row.random_mean = 0.62, row.random_sd = 0.01, row.gain = 0.19;
  row.gain_low = row.gain_high = row.p_value = std::nan("");  // bootstrap = 0
  row.parameters = 85798656, row.macs = 16860000000;
  GainRow short_row = row;
  short_row.tap = "features.6", short_row.tap_index = 6, short_row.gain_low = 0.1, short_row.gain_high = 0.3,
  short_row.p_value = 0.002, short_row.parameters = 3798656;
  const auto table = lines(format_gain_table({short_row, row}, "logistic", "accuracy"));
  REQUIRE(table.size() == 3);
  CHECK(table[0].find("nan") == std::string::npos);
  CHECK(table[2].find("nan") == std::string::npos);
  CHECK_THAT(table[2], Contains(" - ") && Contains("+0.1900"));
  CHECK_THAT(table[1], Contains("[+0.1000, +0.3000]") && Contains("0.0020"));
  // Every line has its parameters column in the same place, whatever the tap's length.
  const std::size_t end = table[0].find("parameters") + std::strlen("parameters");
  CHECK(table[1].substr(end - 7, 7) == "3798656");
  CHECK(table[2].substr(end - 8, 8) == "85798656");
}

TEST_CASE("Trust round 3: result files write the shortest number that reads back exactly", "[trust][results]") {
  CHECK(csv_number(0.773) == "0.773");
  CHECK(csv_number(0.1 + 0.2) == "0.30000000000000004");
  CHECK(csv_number(-0.0625) == "-0.0625");
  CHECK(csv_number(std::nan("")).empty());
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int i = 0; i < 10000; ++i) {
    const double v = u(rng) * std::pow(10.0, static_cast<int>(rng() % 40) - 20);
    REQUIRE(std::stod(csv_number(v)) == v);
  }
}
