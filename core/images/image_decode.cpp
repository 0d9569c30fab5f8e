// Decoding image files without trusting them: the format is told by content (not by the file
// name), the dimensions are read from the header and bounded before any pixel is decoded, and
// a file that is cut short or damaged is an error, never an image with grey rows.
#include "images/image_decode.hpp"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <jpeglib.h>
#include <jerror.h>
#include <opencv2/imgcodecs.hpp>
#include <zlib.h>

namespace kgain::core {
namespace {

std::uint32_t big_endian32(const std::string& b, std::size_t at) {
  return (std::uint32_t(std::uint8_t(b[at])) << 24) | (std::uint32_t(std::uint8_t(b[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(b[at + 2])) << 8) | std::uint32_t(std::uint8_t(b[at + 3]));
}

bool dimensions_ok(std::int64_t width, std::int64_t height) {
  return width > 0 && height > 0 && width <= 65535 && height <= 65535 && width * height <= max_image_pixels;
}

void check_dimensions(const std::string& path, std::int64_t width, std::int64_t height) {
  if (!dimensions_ok(width, height))
    throw ImageError(path + ": the image header declares " + std::to_string(width) + " x " + std::to_string(height) +
                     " pixels; kgain decodes images of at most " + std::to_string(max_image_pixels / 1000000) +
                     " megapixels (a damaged header, or not a patch: tile large images first)");
}

// --- JPEG through libjpeg, whose warnings about corrupt data become errors -----------------
struct JpegErrors {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  std::string problem;  // the first error or data warning
};

void jpeg_fail(j_common_ptr info) {
  auto* errors = reinterpret_cast<JpegErrors*>(info->err);
  char text[JMSG_LENGTH_MAX];
  info->err->format_message(info, text);
  errors->problem = text;
  std::longjmp(errors->jump, 1);
}

void jpeg_message(j_common_ptr info, int level) {
  auto* errors = reinterpret_cast<JpegErrors*>(info->err);
  // Level -1: a warning. Extraneous bytes between segments are harmless (the image data is
  // whole); every other warning means missing or corrupt image data.
  if (level == -1 && info->err->msg_code != JWRN_EXTRANEOUS_DATA && errors->problem.empty()) {
    char text[JMSG_LENGTH_MAX];
    info->err->format_message(info, text);
    errors->problem = text;
  }
}

// CMYK to BGR as OpenCV's JPEG reader converts it (Adobe's inverted CMYK, which is what
// libjpeg returns for the CMYK JPEGs that Photoshop and Pillow write).
cv::Mat cmyk_to_bgr(const cv::Mat& cmyk) {
  cv::Mat bgr(cmyk.rows, cmyk.cols, CV_8UC3);
  for (int r = 0; r < cmyk.rows; ++r) {
    const unsigned char* in = cmyk.ptr<unsigned char>(r);
    unsigned char* out = bgr.ptr<unsigned char>(r);
    for (int x = 0; x < cmyk.cols; ++x, in += 4, out += 3) {
      const int c = in[0], m = in[1], y = in[2], k = in[3];
      out[2] = static_cast<unsigned char>(k - ((255 - c) * k >> 8));
      out[1] = static_cast<unsigned char>(k - ((255 - m) * k >> 8));
      out[0] = static_cast<unsigned char>(k - ((255 - y) * k >> 8));
    }
  }
  return bgr;
}

cv::Mat decode_jpeg(const std::string& path, const std::string& bytes) {
  jpeg_decompress_struct info{};
  JpegErrors errors;
  info.err = jpeg_std_error(&errors.manager);
  errors.manager.error_exit = jpeg_fail;
  errors.manager.emit_message = jpeg_message;
  cv::Mat bgr;  // constructed before setjmp: nothing with a destructor is created between it and longjmp
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    throw ImageError(path + ": the JPEG is damaged (" + errors.problem + ")");
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  if (!dimensions_ok(info.image_width, info.image_height)) {
    const std::int64_t w = info.image_width, h = info.image_height;
    jpeg_destroy_decompress(&info);
    check_dimensions(path, w, h);  // throws, naming the size
  }
  // CMYK (four components): libjpeg-turbo has no BGR conversion for it, so rows are read as
  // CMYK and converted as OpenCV's reader does; either way the decoder's warnings are checked.
  const bool cmyk = info.num_components == 4;
  info.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
  jpeg_start_decompress(&info);
  bgr.create(static_cast<int>(info.output_height), static_cast<int>(info.output_width), cmyk ? CV_8UC4 : CV_8UC3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = bgr.ptr<unsigned char>(static_cast<int>(info.output_scanline));
    jpeg_read_scanlines(&info, &row, 1);
  }
  if (cmyk) bgr = cmyk_to_bgr(bgr);
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (!errors.problem.empty())
    throw ImageError(path + ": the JPEG is cut short or damaged (" + errors.problem + "); re-copy the file");
  return bgr;
}

// --- PNG: every chunk present, within the file and with a correct CRC, up to IEND ----------
void check_png(const std::string& path, const std::string& bytes) {
  std::size_t at = 8;
  bool header = false;
  while (true) {
    if (bytes.size() - at < 12)
      throw ImageError(path + ": the PNG is truncated (no IEND chunk): the file was cut short, re-copy it");
    const std::uint32_t length = big_endian32(bytes, at);
    if (length > bytes.size() - at - 12)
      throw ImageError(path + ": the PNG is truncated (a chunk runs past the end of the file): re-copy it");
    const std::string type = bytes.substr(at + 4, 4);
    const auto* chunk = reinterpret_cast<const Bytef*>(bytes.data() + at + 4);
    if (crc32(0L, chunk, length + 4) != big_endian32(bytes, at + 8 + length))
      throw ImageError(path + ": the PNG is damaged (the CRC of its " + type + " chunk does not match): re-copy it");
    if (!header) {
      if (type != "IHDR" || length != 13)
        throw ImageError(path + ": the PNG is damaged (it does not start with its IHDR header)");
      check_dimensions(path, big_endian32(bytes, at + 8), big_endian32(bytes, at + 12));
      header = true;
    }
    if (type == "IEND") return;  // bytes after IEND are ignored, as every PNG reader does
    at += 12 + length;
  }
}

// --- TIFF: the first directory's width and length ------------------------------------------
void check_tiff(const std::string& path, const std::string& bytes) {
  const bool little = bytes[0] == 'I';
  const auto u16 = [&](std::size_t at) -> std::uint32_t {
    if (at + 2 > bytes.size())
      throw ImageError(path + ": the TIFF is truncated (its header runs past the end of the file)");
    const auto a = std::uint8_t(bytes[at]), b = std::uint8_t(bytes[at + 1]);
    return little ? a | (b << 8) : (a << 8) | b;
  };
  const auto u32 = [&](std::size_t at) -> std::uint32_t {
    return little ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2);
  };
  const std::size_t directory = u32(4);
  const std::uint32_t entries = u16(directory);
  std::int64_t width = 0, height = 0;
  for (std::uint32_t e = 0; e < entries; ++e) {
    const std::size_t entry = directory + 2 + 12 * static_cast<std::size_t>(e);
    const std::uint32_t tag = u16(entry), type = u16(entry + 2);
    const std::uint32_t value = type == 3 ? u16(entry + 8) : u32(entry + 8);  // SHORT or LONG
    if (tag == 256) width = value;
    if (tag == 257) height = value;
  }
  check_dimensions(path, width, height);
}

// --- BMP: width and height from the info header ------------------------------------------
void check_bmp(const std::string& path, const std::string& bytes) {
  if (bytes.size() < 26) throw ImageError(path + ": the BMP is truncated (no complete header)");
  std::int32_t width = 0, height = 0;
  std::memcpy(&width, bytes.data() + 18, 4);
  std::memcpy(&height, bytes.data() + 22, 4);
  check_dimensions(path, width, height < 0 ? -static_cast<std::int64_t>(height) : height);
}

std::string read_bytes(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw ImageError(path + ": the image file does not exist");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw ImageError(path + ": cannot read the image file (" + ec.message() + ")");
  if (size == 0) throw ImageError(path + ": the image file is empty (0 bytes)");
  if (size > max_image_file_bytes)
    throw ImageError(path + ": the file is " + std::to_string(size >> 20) + " MB, larger than any image kgain decodes");
  std::string bytes(size, '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size)))
    throw ImageError(path + ": cannot read the image file");
  return bytes;
}

}  // namespace

cv::Mat decode_image_bytes(const std::string& path, const std::string& bytes) {
  // TIFF's magic numbers hold a NUL byte: arrays, compared with their length.
  static constexpr char tiff_little_endian[] = {'I', 'I', '*', '\0'}, tiff_big_endian[] = {'M', 'M', '\0', '*'};
  const auto starts = [&](const char* magic, std::size_t n) {
    return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
  };
  cv::Mat bgr;
  if (starts("\xFF\xD8\xFF", 3)) {
    return decode_jpeg(path, bytes);
  } else if (starts("\x89PNG\r\n\x1A\n", 8)) {
    check_png(path, bytes);
  } else if (starts(tiff_little_endian, 4) || starts(tiff_big_endian, 4)) {
    check_tiff(path, bytes);
  } else if (starts("BM", 2)) {
    check_bmp(path, bytes);
  } else {
    throw ImageError(path +
                     ": not an image kgain reads (JPEG, PNG, TIFF or BMP, told by the file's content): another kind of "
                     "file, or one damaged from its first bytes");
  }
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    bgr = cv::imdecode(buffer, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw ImageError(path + ": cannot decode the image (" + e.what() + ")");
  }
  if (bgr.empty())
    throw ImageError(path +
                     ": cannot decode the image (damaged, or a variant of its format that OpenCV does not read)");
  return bgr;
}

cv::Mat decode_image_file(const std::string& path) { return decode_image_bytes(path, read_bytes(path)); }

}  // namespace kgain::core
