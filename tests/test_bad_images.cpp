// Unreadable, empty, truncated and non-image files: a clear error naming the file, or, with
// on_bad_image = "skip", left out of every fold and listed. Never a crash, never a silent drop.
#include "test_support.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "images/image.hpp"
#include "images/image_decode.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include "study/run.hpp"

using namespace kgain::core;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
// A folder dataset: two classes of 8 real PCam images each, plus three broken files in class b.
fs::path make_folder_with_bad_files() {
  const fs::path top = fs::temp_directory_path() / ("kgain-bad-" + std::to_string(::getpid()));
  fs::remove_all(top);
  const fs::path root = top / "data";
  int copied = 0;
  for (const char* cls : {"0_no_tumor", "1_tumor"}) {
    fs::create_directories(root / cls);
    int n = 0;
    for (const auto& e : fs::directory_iterator(kgain::test::data_dir() + "/pcam-mini/" + cls)) {
      fs::copy_file(e.path(), root / cls / e.path().filename());
      if (++n == 8) break;
    }
    copied += n;
  }
  REQUIRE(copied == 16);
  // A JPEG cut in half, an empty PNG, and a text file named .png.
  const fs::path good = *fs::directory_iterator(root / "0_no_tumor");
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(root / "1_tumor" / "truncated.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::ofstream(root / "1_tumor" / "empty.png");
  std::ofstream(root / "1_tumor" / "notes.png") << "this is not an image\n";
  return root;  // <top>/data; runs go to <top>/run-*
}
}  // namespace

TEST_CASE("load_image names the file and the reason for each kind of bad file", "[images]") {
  const fs::path root = make_folder_with_bad_files();
  std::vector<float> out(3 * 32 * 32);
  const Preprocessing prep{32, "shorter_side_crop"};
  REQUIRE_THROWS_WITH(load_image((root / "1_tumor/truncated.jpg").string(), prep, out.data()),
                      Contains("truncated.jpg: the JPEG is cut short"));
  REQUIRE_THROWS_WITH(load_image((root / "1_tumor/empty.png").string(), prep, out.data()),
                      Contains("empty.png: the image file is empty (0 bytes)"));
  REQUIRE_THROWS_WITH(load_image((root / "1_tumor/notes.png").string(), prep, out.data()),
                      Contains("notes.png") && Contains("not an image"));
  REQUIRE_THROWS_WITH(load_image((root / "missing.png").string(), prep, out.data()),
                      Contains("missing.png: the image file does not exist"));
  REQUIRE_THROWS_AS(load_image((root / "1_tumor/notes.png").string(), prep, out.data()), ImageError);
  // A good one decodes, normalized: values around 0, none NaN.
  load_image((*fs::directory_iterator(root / "0_no_tumor")).path().string(), prep, out.data());
  for (float v : out) REQUIRE(std::isfinite(v));
  fs::remove_all(root.parent_path());
}

TEST_CASE("on_bad_image: fail stops with the file, skip leaves it out and lists it", "[images][end_to_end]") {
  const fs::path data = make_folder_with_bad_files(), root = data.parent_path();
  const auto config_text = [&](const char* mode) {
    std::ostringstream c;
    c << "[run]\nthreads = 2\n[dataset]\nplugin = \"folder\"\nroot = \"" << (root / "data").string()
      << "\"\non_bad_image = \"" << mode << "\"\n"
      << "[backbone]\nplugin = \"torchscript\"\nfile = \"" << kgain::test::models_dir()
      << "/mobilenet_v1_0.25_128_quant.ts.pt\"\n"
      << "native_input_size = 128\n[features]\ninput_size = 64\n[variants]\nrandom_seeds = [0]\n[splits]\nfolds = 2\n"
      << "[transferability]\nnames = []\ncka = false\n[analysis]\nbootstrap = 0\n";
    return c.str();
  };
  RunOptions options;
  options.out_dir = (root / "run-fail").string();
  REQUIRE_THROWS_WITH(run_study(parse_config(config_text("fail"), (root / "fail.toml").string()), options),
                      Contains("1_tumor/empty.png: the image file is empty"));

  options.out_dir = (root / "run-skip").string();
  const RunSummary s = run_study(parse_config(config_text("skip"), (root / "skip.toml").string()), options);
  REQUIRE(s.extraction.bad_images.size() == 3);
  std::ifstream in(options.out_dir + "/run.json");
  std::stringstream run_json;
  run_json << in.rdbuf();
  for (const char* name : {"truncated.jpg", "empty.png", "notes.png"}) CHECK_THAT(run_json.str(), Contains(name));
  // Every fold tests 16 good images in all, and never a bad one.
  std::int64_t tested = 0;
  for (const auto& r : s.scores)
    if (r.variant == "pretrained" && r.tap_index == 0 && r.metric == "accuracy") tested += r.n_test;
  CHECK(tested == 16);
  CHECK(s.images == 19);
  // A rerun reads the skipped rows from the cache and still lists them, with their reasons.
  const RunSummary again = run_study(parse_config(config_text("skip"), (root / "skip.toml").string()), options);
  CHECK(again.extraction.images_forwarded == 0);
  REQUIRE(again.extraction.bad_images.size() == 3);
  CHECK_THAT(again.extraction.bad_images[0].reason, Contains("empty.png"));
  fs::remove_all(root);
}

TEST_CASE("Resize policies: crop, stretch and pad keep what they promise", "[images]") {
  // A 700 x 460 BreakHis image at 70 px.
  const std::string path = kgain::test::data_dir() + "/breakhis-samples/benign/SOB_B_F-14-25197-400-033.png";
  const std::int64_t s = 70;
  std::vector<float> crop(3 * s * s), stretch(3 * s * s), pad(3 * s * s);
  load_image(path, {s, "shorter_side_crop"}, crop.data());
  load_image(path, {s, "stretch"}, stretch.data());
  load_image(path, {s, "pad"}, pad.data());
  // pad: (700 - 460) / 2 = 120 rows of mean colour above and below, i.e. 12 of 70 rows: the first
  // rows are 0 after normalization in every channel, the middle rows are tissue (not 0).
  for (int c = 0; c < 3; ++c) {
    for (int x = 0; x < s; ++x) CHECK(std::abs(pad[c * s * s + 0 * s + x]) < 0.03f);
    float middle = 0;
    for (int x = 0; x < s; ++x) middle += std::abs(pad[c * s * s + 35 * s + x]) / s;
    CHECK(middle > 0.1f);
  }
  // The three policies differ.
  CHECK(crop != stretch);
  CHECK(stretch != pad);
}

// A CMYK JPEG (Photoshop's and Pillow's kind) went straight to OpenCV, whose reader lets a cut
// file through with grey rows; now it is decoded with the same checks as any JPEG.
TEST_CASE("A CMYK JPEG decodes as OpenCV decodes it, and a cut one is refused like any JPEG", "[images]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-cmyk-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string source = (*fs::directory_iterator(kgain::test::data_dir() + "/pcam-mini/1_tumor")).path().string();
  const std::string jpg = (dir / "cmyk.jpg").string();
  const std::string make = "/usr/bin/python3 -c \"from PIL import Image; Image.open('" + source +
                           "').convert('CMYK').save('" + jpg + "', quality=95); assert Image.open('" + jpg +
                           "').mode == 'CMYK'\"";
  REQUIRE(std::system(make.c_str()) == 0);
  const std::string bytes = kgain::test::slurp(jpg);
  const cv::Mat ours = decode_image_bytes(jpg, bytes);
  const cv::Mat opencv = cv::imread(jpg, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  REQUIRE(ours.type() == CV_8UC3);
  REQUIRE(ours.size() == opencv.size());
  CHECK(cv::norm(ours, opencv, cv::NORM_INF) == 0);
  CHECK(cv::mean(ours)[2] > cv::mean(ours)[1]);  // H&E: more red than green
  const std::string cut = bytes.substr(0, bytes.size() * 6 / 10) + "\xFF\xD9";
  REQUIRE_THROWS_WITH(decode_image_bytes(jpg, cut), Contains("cmyk.jpg: the JPEG is cut short or damaged"));
  fs::remove_all(dir);
}
