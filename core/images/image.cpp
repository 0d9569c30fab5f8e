#include "images/image.hpp"

#include "images/image_decode.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace kgain::core {

namespace {

// Scales `bgr` to the network input as prep.resize says.
void resize_to_input(const cv::Mat& bgr, const Preprocessing& prep, const std::string& path, cv::Mat& resized) {
  const int size = static_cast<int>(prep.size);
  if (prep.resize == "pad") {
    // Fit the longer side to `size`, then pad to a square with the ImageNet mean colour (0
    // after normalization: nothing for the network to see), keeping the whole image and its
    // aspect ratio; memory stays size x size whatever the image's shape.
    const double scale = static_cast<double>(size) / std::max(bgr.cols, bgr.rows);
    const int w = std::max(1, static_cast<int>(std::lround(bgr.cols * scale))),
              h = std::max(1, static_cast<int>(std::lround(bgr.rows * scale)));
    cv::Mat scaled;
    cv::resize(bgr, scaled, cv::Size(w, h), 0, 0, scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const cv::Scalar mean_bgr(std::round(imagenet_mean[2] * 255), std::round(imagenet_mean[1] * 255),
                              std::round(imagenet_mean[0] * 255));
    cv::copyMakeBorder(scaled, resized, (size - h) / 2, size - h - (size - h) / 2, (size - w) / 2,
                       size - w - (size - w) / 2, cv::BORDER_CONSTANT, mean_bgr);
  } else if (prep.resize == "stretch") {
    const bool shrink = bgr.cols > size || bgr.rows > size;
    cv::resize(bgr, resized, cv::Size(size, size), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  } else {
    const double scale = static_cast<double>(size) / std::min(bgr.cols, bgr.rows);
    const double w = std::max<double>(size, std::round(bgr.cols * scale)),
                 h = std::max<double>(size, std::round(bgr.rows * scale));
    if (w * h > static_cast<double>(max_image_pixels))  // a sliver: scaled up, it would fill the memory
      throw ImageError(path + ": a " + std::to_string(bgr.cols) + " x " + std::to_string(bgr.rows) +
                       " image cannot be scaled to a shorter side of " + std::to_string(size) + " px (" +
                       std::to_string(static_cast<long long>(w * h / 1e6)) +
                       " megapixels); use [features] resize = \"pad\" or \"stretch\" for such shapes");
    const int wi = static_cast<int>(w), hi = static_cast<int>(h);
    cv::Mat scaled;
    if (wi == bgr.cols && hi == bgr.rows)
      scaled = bgr;
    else
      cv::resize(bgr, scaled, cv::Size(wi, hi), 0, 0, scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
    resized = scaled(cv::Rect((wi - size) / 2, (hi - size) / 2, size, size));
  }
}

// Resizes, normalizes the stain, scales and normalizes into `out` (CHW floats).
void preprocess(const cv::Mat& bgr, const Preprocessing& prep, const std::string& path, float* out) {
  const int size = static_cast<int>(prep.size);
  cv::Mat resized;
  try {
    resize_to_input(bgr, prep, path, resized);
  } catch (const cv::Exception& e) {
    throw ImageError(path + ": cannot resize the image (" + e.what() + ")");
  }
  if (prep.stain) {
    resized = resized.clone();  // continuous, and never the caller's pixels
    normalize_stain(resized.data, resized.rows, resized.cols, *prep.stain);
  }
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  for (int y = 0; y < size; ++y) {
    const auto* row = resized.ptr<cv::Vec3b>(y);
    for (int x = 0; x < size; ++x) {
      const std::size_t at = static_cast<std::size_t>(y) * size + x;
      for (int c = 0; c < 3; ++c)  // OpenCV stores BGR: channel c of RGB is row[x][2 - c]
        out[c * plane + at] = (row[x][2 - c] / 255.0f - imagenet_mean[c]) / imagenet_std[c];
    }
  }
}

cv::Mat from_rgb(const RgbImage& image, const std::string& path) {
  if (image.height <= 0 || image.width <= 0 ||
      image.pixels.size() != static_cast<std::size_t>(image.height) * image.width * 3)
    throw ImageError(path + ": the dataset returned " + std::to_string(image.pixels.size()) + " bytes for a " +
                     std::to_string(image.height) + "x" + std::to_string(image.width) + " RGB image");
  cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.pixels.data())), bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

// The dataset's pixels when it keeps them, else the decoded file.
cv::Mat read_bgr(const Sample& sample, const Dataset* pixel_source) {
  if (pixel_source) {
    RgbImage image;
    bool kept = false;
    try {
      kept = pixel_source->read_pixels(sample, image);
    } catch (const std::exception& e) {
      throw ImageError(sample.path + ": " + e.what());
    }
    if (kept) return from_rgb(image, sample.path);
  }
  return decode_image_file(sample.path);
}

}  // namespace

void load_image(const std::string& path, const Preprocessing& prep, float* out) {
  preprocess(decode_image_file(path), prep, path, out);
}

void load_sample(const Sample& sample, const Preprocessing& prep, float* out) {
  preprocess(read_bgr(sample, prep.pixel_source), prep, sample.path, out);
}

RgbImage read_rgb(const Sample& sample, const Dataset* pixel_source) {
  const cv::Mat bgr = read_bgr(sample, pixel_source);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  RgbImage out;
  out.height = rgb.rows;
  out.width = rgb.cols;
  out.pixels.assign(rgb.datastart, rgb.dataend);
  return out;
}

}  // namespace kgain::core
