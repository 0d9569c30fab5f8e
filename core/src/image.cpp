#include "kgain/core/image.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace kgain::core {

namespace {

// Decodes an image file as BGR, refusing missing, empty and truncated files.
cv::Mat decode_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw ImageError(path + ": the image file does not exist");
  if (std::filesystem::file_size(path, ec) == 0) throw ImageError(path + ": the image file is empty (0 bytes)");
  // OpenCV decodes a cut-off JPEG or PNG without complaint (grey or black rows where data is
  // missing), so a file must end with its format's end marker.
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") {
    std::ifstream in(path, std::ios::binary);
    const auto size = static_cast<std::streamoff>(std::filesystem::file_size(path, ec));
    const std::streamoff tail_size = std::min<std::streamoff>(size, 64);
    std::string tail(static_cast<std::size_t>(tail_size), '\0');
    in.seekg(size - tail_size);
    in.read(tail.data(), tail_size);
    const bool complete = ext == ".png" ? tail.find("IEND") != std::string::npos : tail.find("\xFF\xD9") != std::string::npos;
    if (!complete)
      throw ImageError(path + ": the image is truncated (no " + (ext == ".png" ? "IEND chunk" : "JPEG end-of-image marker") +
                       " at its end): the file was cut short, re-copy it");
  }
  cv::Mat bgr;
  try {
    bgr = cv::imread(path, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw ImageError(path + ": cannot decode the image (" + e.what() + ")");
  }
  if (bgr.empty()) throw ImageError(path + ": cannot decode the image (not an image, truncated, or an unsupported format)");
  return bgr;
}

// Resizes, normalizes the stain, scales and normalizes into `out` (CHW floats).
void preprocess(const cv::Mat& bgr, const Preprocessing& prep, float* out) {
  const int size = static_cast<int>(prep.size);
  cv::Mat resized;
  if (prep.resize == "pad") {
    // Pad to a square with the ImageNet mean colour (0 after normalization: nothing for the
    // network to see), keeping the whole image and its aspect ratio, then resize.
    const int side = std::max(bgr.cols, bgr.rows);
    const cv::Scalar mean_bgr(std::round(imagenet_mean[2] * 255), std::round(imagenet_mean[1] * 255), std::round(imagenet_mean[0] * 255));
    cv::Mat square;
    cv::copyMakeBorder(bgr, square, (side - bgr.rows) / 2, side - bgr.rows - (side - bgr.rows) / 2, (side - bgr.cols) / 2,
                       side - bgr.cols - (side - bgr.cols) / 2, cv::BORDER_CONSTANT, mean_bgr);
    cv::resize(square, resized, cv::Size(size, size), 0, 0, side > size ? cv::INTER_AREA : cv::INTER_LINEAR);
  } else if (prep.resize == "stretch") {
    const bool shrink = bgr.cols > size || bgr.rows > size;
    cv::resize(bgr, resized, cv::Size(size, size), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  } else {
    const double scale = static_cast<double>(size) / std::min(bgr.cols, bgr.rows);
    const int w = std::max(size, static_cast<int>(std::lround(bgr.cols * scale)));
    const int h = std::max(size, static_cast<int>(std::lround(bgr.rows * scale)));
    cv::Mat scaled;
    if (w == bgr.cols && h == bgr.rows) scaled = bgr;
    else cv::resize(bgr, scaled, cv::Size(w, h), 0, 0, scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
    resized = scaled(cv::Rect((w - size) / 2, (h - size) / 2, size, size));
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
  if (image.height <= 0 || image.width <= 0 || image.pixels.size() != static_cast<std::size_t>(image.height) * image.width * 3)
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
  return decode_file(sample.path);
}

}  // namespace

void load_image(const std::string& path, const Preprocessing& prep, float* out) { preprocess(decode_file(path), prep, out); }

void load_sample(const Sample& sample, const Preprocessing& prep, float* out) { preprocess(read_bgr(sample, prep.pixel_source), prep, out); }

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
