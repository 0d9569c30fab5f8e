#include "images/stain.hpp"

#include "images/image_decode.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace kgain::core {
namespace {

constexpr double background = 240.0;  // transmitted light intensity (Macenko's Io)
constexpr double tissue_od = 0.15;    // pixels below this OD in any channel are background
constexpr double angle_percentile = 1.0;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank)), hi = static_cast<std::size_t>(std::ceil(rank));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(lo), v.end());
  const double a = v[lo];
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(hi), v.end());
  return a + (v[hi] - a) * (rank - static_cast<double>(lo));
}

// Optical density per pixel, RGB order: n x 3.
cv::Mat optical_density(const unsigned char* bgr, int height, int width) {
  const int n = height * width;
  cv::Mat od(n, 3, CV_64F);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) od.at<double>(i, c) = -std::log((bgr[i * 3 + (2 - c)] + 1.0) / background);
  return od;
}

cv::Mat stain_matrix(const StainVectors& s) {  // 3 x 2, columns H and E
  cv::Mat m(3, 2, CV_64F);
  for (int c = 0; c < 3; ++c) {
    m.at<double>(c, 0) = s.haematoxylin[c];
    m.at<double>(c, 1) = s.eosin[c];
  }
  return m;
}

// Concentrations (n x 2) of every pixel: least squares OD = C * M^T.
cv::Mat concentrations(const cv::Mat& od, const StainVectors& s) {
  cv::Mat m = stain_matrix(s), c;
  cv::solve(m, od.t(), c, cv::DECOMP_SVD);  // 2 x n
  return c.t();
}

std::array<double, 2> max_concentrations(const cv::Mat& c) {
  std::vector<double> h(static_cast<std::size_t>(c.rows)), e(static_cast<std::size_t>(c.rows));
  for (int i = 0; i < c.rows; ++i) h[i] = c.at<double>(i, 0), e[i] = c.at<double>(i, 1);
  return {percentile(h, 99), percentile(e, 99)};
}

void lab_statistics(const cv::Mat& bgr8, std::array<double, 3>& mean, std::array<double, 3>& sd) {
  cv::Mat f, lab;
  bgr8.convertTo(f, CV_32F, 1.0 / 255.0);
  cv::cvtColor(f, lab, cv::COLOR_BGR2Lab);
  cv::Scalar m, s;
  cv::meanStdDev(lab, m, s);
  for (int c = 0; c < 3; ++c) mean[c] = m[c], sd[c] = std::max(s[c], 1e-6);
}

}  // namespace

StainVectors macenko_stain_vectors(const unsigned char* bgr, int height, int width) {
  const cv::Mat od = optical_density(bgr, height, width);
  std::vector<int> tissue;
  for (int i = 0; i < od.rows; ++i)
    if (od.at<double>(i, 0) >= tissue_od && od.at<double>(i, 1) >= tissue_od && od.at<double>(i, 2) >= tissue_od)
      tissue.push_back(i);
  if (tissue.size() < 100)
    throw std::runtime_error("too little tissue to estimate stain vectors (" + std::to_string(tissue.size()) +
                             " pixels)");
  cv::Mat t(static_cast<int>(tissue.size()), 3, CV_64F);
  for (std::size_t k = 0; k < tissue.size(); ++k) od.row(tissue[k]).copyTo(t.row(static_cast<int>(k)));
  cv::Mat covariance, mean;
  cv::calcCovarMatrix(t, covariance, mean, cv::COVAR_NORMAL | cv::COVAR_ROWS | cv::COVAR_SCALE);
  cv::Mat values, vectors;  // rows of `vectors`, by decreasing eigenvalue
  cv::eigen(covariance, values, vectors);
  cv::Mat plane = vectors.rowRange(0, 2).t();  // 3 x 2
  for (int j = 0; j < 2; ++j)                  // the OD of stains is positive: orient the axes that way
    if (plane.at<double>(0, j) + plane.at<double>(1, j) + plane.at<double>(2, j) < 0) plane.col(j) *= -1;
  const cv::Mat projected = t * plane;  // n x 2
  std::vector<double> angles(static_cast<std::size_t>(projected.rows));
  for (int i = 0; i < projected.rows; ++i)
    angles[i] = std::atan2(projected.at<double>(i, 1), projected.at<double>(i, 0));
  const double lo = percentile(angles, angle_percentile), hi = percentile(angles, 100 - angle_percentile);
  const auto direction = [&](double angle) {
    cv::Mat v = plane * (cv::Mat_<double>(2, 1) << std::cos(angle), std::sin(angle));
    if (cv::sum(v)[0] < 0) v *= -1;
    v /= cv::norm(v);
    return std::array<double, 3>{v.at<double>(0), v.at<double>(1), v.at<double>(2)};
  };
  auto a = direction(lo), b = direction(hi);
  // Haematoxylin absorbs more red than eosin does.
  if (a[0] < b[0]) std::swap(a, b);
  return {a, b};
}

StainReference make_stain_reference(const std::string& method, const std::string& reference_image) {
  if (method != "reinhard" && method != "macenko")
    throw std::runtime_error("unknown stain normalization '" + method + "': use \"reinhard\" or \"macenko\"");
  cv::Mat bgr;
  try {
    bgr = decode_image_file(reference_image);
  } catch (const ImageError& e) {
    throw std::runtime_error(std::string(e.what()) + " (the stain reference image)");
  }
  StainReference ref;
  ref.method = method;
  ref.image = reference_image;
  try {
    if (method == "reinhard") {
      lab_statistics(bgr, ref.lab_mean, ref.lab_std);
    } else {
      const cv::Mat continuous = bgr.isContinuous() ? bgr : bgr.clone();
      ref.stains = macenko_stain_vectors(continuous.data, continuous.rows, continuous.cols);
      ref.max_concentration = max_concentrations(
          concentrations(optical_density(continuous.data, continuous.rows, continuous.cols), ref.stains));
    }
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(reference_image + ": not usable as a stain reference: " + e.what() +
                             "; choose a tile with more tissue");
  }
  return ref;
}

void normalize_stain(unsigned char* bgr, int height, int width, const StainReference& reference) {
  cv::Mat image(height, width, CV_8UC3, bgr);
  if (reference.method == "reinhard") {
    std::array<double, 3> mean{}, sd{};
    lab_statistics(image, mean, sd);
    cv::Mat f, lab;
    image.convertTo(f, CV_32F, 1.0 / 255.0);
    cv::cvtColor(f, lab, cv::COLOR_BGR2Lab);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        auto& p = lab.at<cv::Vec3f>(y, x);
        for (int c = 0; c < 3; ++c)
          p[c] = static_cast<float>((p[c] - mean[c]) / sd[c] * reference.lab_std[c] + reference.lab_mean[c]);
      }
    cv::cvtColor(lab, f, cv::COLOR_Lab2BGR);
    f.convertTo(image, CV_8U, 255.0);  // saturates to [0, 255]
    return;
  }
  StainVectors own;
  try {
    own = macenko_stain_vectors(bgr, height, width);
  } catch (const std::runtime_error&) {
    return;  // a tile of background only: nothing to normalize
  }
  const cv::Mat od = optical_density(bgr, height, width);
  cv::Mat c = concentrations(od, own);
  const auto max_own = max_concentrations(c);
  for (int j = 0; j < 2; ++j) c.col(j) *= reference.max_concentration[j] / std::max(max_own[j], 1e-6);
  const cv::Mat mixed = c * stain_matrix(reference.stains).t();  // n x 3 OD, RGB
  for (int i = 0; i < height * width; ++i)
    for (int ch = 0; ch < 3; ++ch) {
      const double v = background * std::exp(-mixed.at<double>(i, ch)) - 1.0;
      bgr[i * 3 + (2 - ch)] = static_cast<unsigned char>(std::clamp(std::lround(v), 0L, 255L));
    }
}

}  // namespace kgain::core
