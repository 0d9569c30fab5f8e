// Preprocessing beyond resizing: stain normalization (Macenko, Reinhard) on a real H&E image
// whose colours were changed by a known transform, and the decoding pool, whose output must
// not depend on its number of threads.
#include "test_support.hpp"

#include <array>
#include <cmath>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "extract/extraction.hpp"
#include "images/image_identity.hpp"
#include "extract/feature_store.hpp"
#include "images/image.hpp"
#include "plan/registry.hpp"
#include "images/stain.hpp"

using namespace kgain;
using namespace kgain::core;
namespace fs = std::filesystem;

namespace {

// A BreakHis original (benign fibroadenoma, 100x): strong haematoxylin and eosin.
const std::string tile = test::data_dir() + "/breakhis-samples/benign/SOB_B_F-14-25197-100-001.png";

double cosine(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (int c = 0; c < 3; ++c) ab += a[c] * b[c], aa += a[c] * a[c], bb += b[c] * b[c];
  return ab / std::sqrt(aa * bb);
}

std::array<double, 3> unit(std::array<double, 3> v) {
  const double n = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  for (auto& x : v) x /= n;
  return v;
}

// The image re-stained: each pixel's H and E concentrations under `from` (least squares on its
// optical density, OD = -ln((I + 1) / 240)), remixed with the stain vectors `to`.
cv::Mat restain(const cv::Mat& bgr, const StainVectors& from, const StainVectors& to) {
  cv::Mat out = bgr.clone();
  const cv::Matx32d m(from.haematoxylin[0], from.eosin[0], from.haematoxylin[1], from.eosin[1], from.haematoxylin[2],
                      from.eosin[2]);
  const cv::Matx23d pinv = (m.t() * m).inv() * m.t();
  for (int i = 0; i < bgr.rows * bgr.cols; ++i) {
    cv::Vec3d od;
    for (int c = 0; c < 3; ++c) od[c] = -std::log((bgr.data[i * 3 + (2 - c)] + 1.0) / 240.0);
    const cv::Vec2d conc = pinv * od;
    for (int c = 0; c < 3; ++c) {
      const double v = 240.0 * std::exp(-(conc[0] * to.haematoxylin[c] + conc[1] * to.eosin[c])) - 1.0;
      out.data[i * 3 + (2 - c)] = static_cast<unsigned char>(std::clamp(std::lround(v), 0L, 255L));
    }
  }
  return out;
}

double mean_abs_difference(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  return cv::mean(d.reshape(1))[0];
}

}  // namespace

TEST_CASE("Macenko: recovers a known change of stain vectors and maps it back to the reference's", "[stain]") {
  const cv::Mat reference = cv::imread(tile, cv::IMREAD_COLOR);
  REQUIRE(!reference.empty());
  const StainVectors own = macenko_stain_vectors(reference.data, reference.rows, reference.cols);
  // Plausible H&E vectors: haematoxylin absorbs red most, eosin green.
  CHECK(own.haematoxylin[0] > own.eosin[0]);
  CHECK(own.eosin[1] > own.haematoxylin[1]);

  // Another lab's stains: both vectors turned by a known amount.
  const StainVectors other{unit({own.haematoxylin[0] + 0.15, own.haematoxylin[1] - 0.10, own.haematoxylin[2] + 0.05}),
                           unit({own.eosin[0] - 0.05, own.eosin[1] + 0.10, own.eosin[2] + 0.15})};
  const cv::Mat model = restain(reference, own, own);  // the reference as the stain model sees it
  const cv::Mat altered = restain(reference, own, other);
  const StainVectors found = macenko_stain_vectors(altered.data, altered.rows, altered.cols);
  CHECK(cosine(found.haematoxylin, other.haematoxylin) > 0.995);
  CHECK(cosine(found.eosin, other.eosin) > 0.995);

  const StainReference target = make_stain_reference("macenko", tile);
  cv::Mat normalized = altered.clone();
  normalize_stain(normalized.data, normalized.rows, normalized.cols, target);
  const StainVectors after = macenko_stain_vectors(normalized.data, normalized.rows, normalized.cols);
  CHECK(cosine(after.haematoxylin, own.haematoxylin) > 0.995);
  CHECK(cosine(after.eosin, own.eosin) > 0.995);
  const double before_diff = mean_abs_difference(altered, model), after_diff = mean_abs_difference(normalized, model);
  CAPTURE(before_diff, after_diff);
  CHECK(after_diff < 3.0);
  CHECK(after_diff < before_diff / 3);
}

TEST_CASE("Reinhard: the image takes the reference's Lab mean and spread", "[stain]") {
  const StainReference target = make_stain_reference("reinhard", tile);
  cv::Mat image = cv::imread(test::data_dir() + "/lc25000-lung-mini/lung_aca/lungaca1.jpeg", cv::IMREAD_COLOR);
  REQUIRE(!image.empty());
  // A known change: darker and bluer.
  image.convertTo(image, -1, 0.8, 0);
  image.forEach<cv::Vec3b>([](cv::Vec3b& p, const int*) { p[0] = cv::saturate_cast<unsigned char>(p[0] + 30); });
  normalize_stain(image.data, image.rows, image.cols, target);
  cv::Mat f, lab;
  image.convertTo(f, CV_32F, 1.0 / 255.0);
  cv::cvtColor(f, lab, cv::COLOR_BGR2Lab);
  cv::Scalar mean, sd;
  cv::meanStdDev(lab, mean, sd);
  for (int c = 0; c < 3; ++c) {
    CAPTURE(c, mean[c], target.lab_mean[c], sd[c], target.lab_std[c]);
    CHECK(std::abs(mean[c] - target.lab_mean[c]) < 1.0);
    CHECK(std::abs(sd[c] - target.lab_std[c]) < 1.0);
  }
  CHECK_THROWS_WITH(make_stain_reference("macenko", test::data_dir() + "/nope.png"),
                    Catch::Matchers::Contains("nope.png"));
}

TEST_CASE("The decoding pool gives identical features with 1 and 3 threads", "[images][end_to_end]") {
  Registry registry;
  registry.add_directory(test::plugin_dir());
  Options options("backbone", "");
  options.set("file", test::models_dir() + "/mobilenet_v1_0.25_128_quant.ts.pt");
  auto backbone = registry.create<Backbone>("torchscript", options);
  std::vector<Sample> samples;
  for (const auto& entry : fs::directory_iterator(test::data_dir() + "/lc25000-lung-mini/lung_n"))
    if (samples.size() < 300) samples.push_back({entry.path().string(), 0, "", ""});
  std::sort(samples.begin(), samples.end(), [](const Sample& a, const Sample& b) { return a.path < b.path; });
  Preprocessing prep;
  prep.size = 64;
  prep.stain = std::make_shared<const StainReference>(make_stain_reference("macenko", tile));
  const fs::path dir = fs::temp_directory_path() / ("kgain-decode-" + std::to_string(::getpid()));
  std::vector<std::vector<at::Tensor>> runs;  // [threads][tap]
  for (int threads : {1, 3}) {
    std::vector<FeatureSpace> spaces;
    spaces.emplace_back((dir / std::to_string(threads)).string(), "decode test", StoragePrecision::float32);
    ExtractionStats stats;
    const auto identities = image_identities(samples, nullptr, threads);
    const ExtractionInput input{samples, identities, prep, 32, false, threads};
    extract_features(*backbone, {Variant{}}, Pooling::avg, input, spaces, stats);
    CHECK(stats.images_decoded == 300);
    runs.emplace_back();
    for (std::size_t t = 0; t < spaces[0].dims().size(); ++t)
      runs.back().push_back(load_tap(spaces[0], t, identities, {}, samples));
  }
  REQUIRE(runs[0].size() == 14);
  for (std::size_t t = 0; t < runs[0].size(); ++t) CHECK(torch::equal(runs[0][t], runs[1][t]));
  fs::remove_all(dir);
}
