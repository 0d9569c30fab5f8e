// The pcam_h5 dataset on files written here in PatchCamelyon's exact layout (x: uint8
// [N, 96, 96, 3], y: uint8 [N, 1, 1, 1], chunked and gzip-compressed, plus a meta CSV with the
// slide), made from the JPEG patches of ../shared/data/pcam-mini.
#include "test_support.hpp"

#include <filesystem>
#include <map>

#include <hdf5.h>
#include <zlib.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "plan/data_summary.hpp"
#include "images/image.hpp"
#include "plan/registry.hpp"
#include "plan/splits.hpp"

using namespace kgain;
using namespace kgain::core;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct Patch {
  std::string jpeg;
  int label;
};

// The first `per_class` patches of each class of one pcam-mini split, from its manifest.
std::vector<Patch> mini_split(const std::string& split, int per_class) {
  std::vector<Patch> out;
  std::map<int, int> taken;
  const auto rows = test::lines(test::slurp(test::data_dir() + "/pcam-mini/manifest.csv"));
  for (std::size_t i = 1; i < rows.size(); ++i) {
    std::string row = rows[i];
    if (!row.empty() && row.back() == '\r') row.pop_back();
    const auto a = row.find(','), b = row.rfind(',');
    const std::string path = row.substr(0, a), label = row.substr(a + 1, b - a - 1), s = row.substr(b + 1);
    const int l = label == "1_tumor" ? 1 : 0;
    if (s == split && taken[l]++ < per_class) out.push_back({test::data_dir() + "/pcam-mini/" + path, l});
  }
  return out;
}

void write_u8(const std::string& path, const char* name, const std::vector<hsize_t>& dims,
              const std::vector<std::uint8_t>& data, bool chunked) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  if (chunked) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    H5Pset_chunk(properties, static_cast<int>(chunk.size()), chunk.data());
    H5Pset_deflate(properties, 4);
  }
  const hid_t dataset = H5Dcreate2(file, name, H5T_STD_U8LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
  REQUIRE(H5Dwrite(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) >= 0);
  H5Dclose(dataset);
  H5Pclose(properties);
  H5Sclose(space);
  H5Fclose(file);
}

// Writes <dir>/camelyonpatch_level_2_split_<split>_{x,y}.h5 and _meta.csv; returns the patches.
std::vector<Patch> write_split(const std::string& dir, const std::string& split, int per_class) {
  const auto patches = mini_split(split, per_class);
  REQUIRE(patches.size() == 2 * static_cast<std::size_t>(per_class));
  std::vector<std::uint8_t> x, y;
  for (const auto& p : patches) {
    cv::Mat rgb;
    cv::cvtColor(cv::imread(p.jpeg, cv::IMREAD_COLOR), rgb, cv::COLOR_BGR2RGB);
    REQUIRE((rgb.rows == 96 && rgb.cols == 96));
    x.insert(x.end(), rgb.datastart, rgb.dataend);
    y.push_back(static_cast<std::uint8_t>(p.label));
  }
  const hsize_t n = patches.size();
  const std::string stem = dir + "/camelyonpatch_level_2_split_" + split;
  write_u8(stem + "_x.h5", "x", {n, 96, 96, 3}, x, true);
  write_u8(stem + "_y.h5", "y", {n, 1, 1, 1}, y, false);
  std::ofstream meta(stem + "_meta.csv");
  meta << ",coord_y,coord_x,tumor_patch,center_tumor_patch,wsi\n";
  for (hsize_t i = 0; i < n; ++i) meta << i << ",0,0,False,False," << split << "_slide_" << i % 7 << "\n";
  return patches;
}

std::shared_ptr<Dataset> pcam_h5(const std::string& root) {
  static Registry registry = [] {
    Registry r;
    r.add_directory(test::plugin_dir());
    return r;
  }();
  Options options("dataset", "");
  options.set("root", root);
  return registry.create<Dataset>("pcam_h5", options);
}

}  // namespace

TEST_CASE("pcam_h5 reads PatchCamelyon's HDF5 layout: counts, labels, slides and exact pixels", "[datasets][pcam_h5]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-pcam-h5-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto train = write_split(dir.string(), "train", 30);
  const auto test = write_split(dir.string(), "test", 20);

  auto dataset = pcam_h5(dir.string());
  const auto samples = dataset->samples();
  REQUIRE(samples.size() == train.size() + test.size());
  std::map<std::string, std::map<int, int>> counts;
  for (const auto& s : samples) counts[s.split][s.label] += 1;
  CHECK(counts["train"][0] == 30);
  CHECK(counts["train"][1] == 30);
  CHECK(counts["test"][0] == 20);
  CHECK(counts["test"][1] == 20);
  CHECK(samples[0].group == "train_slide_0");
  CHECK(samples[8].group == "train_slide_1");

  // Every patch: the label of its row, and pixels identical to the JPEG it was made from, also
  // after the core's preprocessing (so features from the HDF5 set equal those from the files).
  const Preprocessing prep{96, "shorter_side_crop", nullptr, dataset.get()};
  std::vector<float> a(3 * 96 * 96), b(3 * 96 * 96);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Patch& p = i < train.size() ? train[i] : test[i - train.size()];
    CAPTURE(i, samples[i].path);
    CHECK(samples[i].label == p.label);
    RgbImage image;
    REQUIRE(dataset->read_pixels(samples[i], image));
    cv::Mat rgb;
    cv::cvtColor(cv::imread(p.jpeg, cv::IMREAD_COLOR), rgb, cv::COLOR_BGR2RGB);
    CHECK(std::equal(image.pixels.begin(), image.pixels.end(), rgb.datastart));
    if (i % 10 == 0) {
      load_sample(samples[i], prep, a.data());
      load_image(p.jpeg, prep, b.data());
      CHECK(a == b);
    }
  }

  // kgain data describes it through the plugin's pixels, with PCam's own split.
  const auto plan = make_splits(samples, 2, "auto", 5, 0);
  const std::string text =
      describe_dataset(dataset->description(), dataset->class_names(), samples, plan, true, dataset.get());
  CHECK_THAT(text, Contains("96x96: 100") && Contains("unreadable files: 0"));

  // Errors name the file and the fix.
  fs::remove(dir / "camelyonpatch_level_2_split_test_y.h5");
  {
    Options options("dataset", "");
    options.set("root", dir.string());
    options.set("splits", Options::List{std::string("test")});
    Registry registry;
    registry.add_directory(test::plugin_dir());
    REQUIRE_THROWS_WITH(registry.create<Dataset>("pcam_h5", options),
                        Contains("camelyonpatch_level_2_split_test_y.h5") && Contains("github.com/basveeling/pcam"));
  }
  std::ofstream(dir / "camelyonpatch_level_2_split_test_y.h5") << "not hdf5";
  REQUIRE_THROWS_WITH(pcam_h5(dir.string()),
                      Contains("camelyonpatch_level_2_split_test_y.h5: cannot open as an HDF5 file"));
  fs::remove_all(dir);
}

namespace {

// A one-dataset file "x" of uint8 `dims`, chunked as `chunk` (unlimited maximum dimensions, so
// that chunks may be wider than the data) with `filters` ("gzip", "fletcher32"), whose chunks are
// written as given: offset -> stored bytes (already compressed where gzip applies; bit i of
// `skipped` says that filter i was not applied).
void write_chunks(const std::string& path, const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                  const std::vector<std::string>& filters,
                  const std::vector<std::pair<std::vector<hsize_t>, std::vector<std::uint8_t>>>& chunks,
                  std::uint32_t skipped = 0) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const std::vector<hsize_t> unlimited(dims.size(), H5S_UNLIMITED);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), unlimited.data());
  const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(properties, static_cast<int>(chunk.size()), chunk.data());
  for (const auto& f : filters) f == "gzip" ? H5Pset_deflate(properties, 4) : H5Pset_fletcher32(properties);
  const hid_t dataset = H5Dcreate2(file, "x", H5T_STD_U8LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
  for (const auto& [offset, bytes] : chunks)
    REQUIRE(H5Dwrite_chunk(dataset, H5P_DEFAULT, skipped, offset.data(), bytes.size(), bytes.data()) >= 0);
  H5Dclose(dataset);
  H5Pclose(properties);
  H5Sclose(space);
  H5Fclose(file);
}

std::vector<std::uint8_t> gzip(const std::vector<std::uint8_t>& data) {
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::vector<std::uint8_t> out(size);
  REQUIRE(compress(out.data(), &size, data.data(), static_cast<uLong>(data.size())) == Z_OK);
  out.resize(size);
  return out;
}

// Bytes 0, 1, 2, ... (mod 251) from `start`: every pixel of a patch tells where it came from.
std::vector<std::uint8_t> counting(std::size_t n, std::size_t start) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((start + i) % 251);
  return v;
}

}  // namespace

TEST_CASE(
    "pcam_h5's meta file: CRLF and a byte-order mark are read, a patch without its slide or a reordered row is "
    "an error",
    "[datasets][pcam_h5]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-pcam-h5-meta-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_split(dir.string(), "train", 4);
  write_split(dir.string(), "test", 4);
  const std::string meta = (dir / "camelyonpatch_level_2_split_train_meta.csv").string();
  // The meta file rewritten: `wsi` first or last, the third patch's slide `blank` or its own.
  const auto rewrite = [&](const std::string& bom, const std::string& end, bool wsi_first, const std::string& blank) {
    std::ofstream out(meta, std::ios::binary);
    out << bom << (wsi_first ? "wsi,coord_y" : "coord_y,wsi") << end;
    for (int i = 0; i < 8; ++i) {
      const std::string slide = i == 2 ? blank : "slide_" + std::to_string(i % 3);
      out << (wsi_first ? slide + ",0" : "0," + slide) << end;
    }
  };
  for (bool wsi_first : {true, false}) {
    CAPTURE(wsi_first);
    rewrite("\xEF\xBB\xBF", "\r\n", wsi_first, "slide_2");  // as a spreadsheet saves it
    const auto samples = pcam_h5(dir.string())->samples();
    REQUIRE(samples.size() == 16);
    CHECK(samples[0].group == "slide_0");  // neither the mark nor a '\r' left on the slide
    CHECK(samples[2].group == "slide_2");
    for (const std::string blank : {"", " "}) {
      rewrite("", "\n", wsi_first, blank);
      REQUIRE_THROWS_WITH(pcam_h5(dir.string()),
                          Contains("_train_meta.csv:4: no slide in the 'wsi' field") && Contains("every patch needs"));
    }
  }
  // Rows reordered (a meta file sorted by slide in a spreadsheet): pandas' index column, which
  // the official files begin with, no longer counts up, and patches would swap slides.
  write_split(dir.string(), "train", 4);
  std::string text = test::slurp(meta);
  const auto row_of = [&](int i) {
    const auto at = text.find("\n" + std::to_string(i) + ",") + 1;
    return std::make_pair(at, text.find('\n', at) + 1 - at);
  };
  const auto [third, third_length] = row_of(2);
  const std::string third_row = text.substr(third, third_length);
  text.erase(third, third_length);
  text.insert(row_of(3).first + row_of(3).second, third_row);  // rows 0, 1, 3, 2, 4, ...
  std::ofstream(meta, std::ios::binary | std::ios::trunc) << text;
  CHECK_THROWS_WITH(pcam_h5(dir.string()),
                    Contains("_train_meta.csv:4: the row of patch '3' where patch 2's is expected"));
  fs::remove_all(dir);
}

TEST_CASE("pcam_h5 reads chunks itself: a short, missing or foreign-filtered chunk is an error, never other pixels",
          "[datasets][pcam_h5][trust]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-pcam-h5-chunks-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string x = (dir / "camelyonpatch_level_2_split_test_x.h5").string();
  write_u8((dir / "camelyonpatch_level_2_split_test_y.h5").string(), "y", {3, 1, 1, 1}, {0, 1, 0}, false);
  const auto read = [&](std::int64_t index) {
    auto dataset = pcam_h5(dir.string());
    RgbImage image;
    dataset->read_pixels(dataset->samples().at(static_cast<std::size_t>(index)), image);
    return image.pixels;
  };
  constexpr std::size_t patch = 8 * 8 * 3;

  // Chunks wider than the data (legal when dimensions may grow; the fuzzer's input declared
  // them on a fixed-size dataset): the data part of each chunk, nothing beyond it.
  const std::size_t wide = 8 * 20 * 3;  // a chunk [1, 8, 20, 3] for patches [8, 8, 3]
  std::vector<std::uint8_t> row0 = counting(wide, 0), row1 = counting(wide, 7), row2 = counting(wide, 99);
  write_chunks(x, {3, 8, 8, 3}, {1, 8, 20, 3}, {"gzip"},
               {{{0, 0, 0, 0}, gzip(row0)}, {{1, 0, 0, 0}, gzip(row1)}, {{2, 0, 0, 0}, gzip(row2)}});
  const auto pixels = read(1);
  REQUIRE(pixels.size() == patch);
  for (std::size_t y = 0; y < 8; ++y)
    for (std::size_t b = 0; b < 8 * 3; ++b) CHECK(pixels[y * 24 + b] == row1[y * 60 + b]);

  // A gzip stream that inflates to fewer bytes than a chunk (libhdf5's H5Dread copied the rest
  // from past its own buffer: other memory as pixels, exit status 0).
  write_chunks(x, {3, 8, 8, 3}, {1, 8, 8, 3}, {"gzip"},
               {{{0, 0, 0, 0}, gzip(counting(patch, 0))},
                {{1, 0, 0, 0}, gzip(counting(100, 0))},
                {{2, 0, 0, 0}, gzip(counting(patch, 5))}});
  CHECK(read(0) == counting(patch, 0));
  CHECK(read(2) == counting(patch, 5));
  CHECK_THROWS_WITH(read(1), Contains(x + ": the chunk at row 1 is not a gzip stream of exactly 192 bytes"));

  // A chunk that was never written (H5Dread gave the fill value: a black patch).
  write_chunks(x, {3, 8, 8, 3}, {1, 8, 8, 3}, {},
               {{{0, 0, 0, 0}, counting(patch, 0)}, {{1, 0, 0, 0}, counting(patch, 1)}});
  CHECK(read(1) == counting(patch, 1));
  CHECK_THROWS_WITH(read(2), Contains(x + ": the chunk at row 2 is not stored"));

  // An unfiltered chunk whose index record disagrees with a chunk's size. Longer (CI's
  // fuzz_pcam_h5, 2026-12-01: H5Dread_chunk read the recorded length past the plugin's buffer,
  // and the test process aborted on a corrupted heap) or shorter (CI's fuzz_pcam_h5, the same
  // day: libhdf5's H5Dread allocated the recorded length and copied a whole chunk out of it, so
  // a label came from other memory). Both are errors now.
  write_chunks(x, {3, 8, 8, 3}, {1, 8, 8, 3}, {},
               {{{0, 0, 0, 0}, counting(patch, 0)},
                {{1, 0, 0, 0}, counting(patch + 4096, 1)},
                {{2, 0, 0, 0}, counting(patch - 92, 2)}});
  CHECK(read(0) == counting(patch, 0));
  CHECK_THROWS_WITH(read(1), Contains(x + ": the chunk at row 1 takes 4288 bytes for 192 bytes of data"));
  CHECK_THROWS_WITH(read(2), Contains(x + ": the chunk at row 2 holds 100 bytes, not 192"));

  // A chunk stored without its gzip filter (allowed per chunk) must hold exactly a chunk's bytes.
  write_chunks(
      x, {3, 8, 8, 3}, {1, 8, 8, 3}, {"gzip"},
      {{{0, 0, 0, 0}, counting(patch, 0)}, {{1, 0, 0, 0}, counting(patch - 1, 0)}, {{2, 0, 0, 0}, counting(patch, 2)}},
      /*skipped=*/1);
  CHECK(read(2) == counting(patch, 2));
  CHECK_THROWS_WITH(read(1), Contains("holds 191 bytes, not 192"));

  // An empty dimension (the fuzzer's dims [2, 576460752303423496, 0, 3] made a row of 0 bytes
  // pass the size bound, and walking its chunks never ended).
  write_chunks(x, {3, 1ULL << 59, 0, 3}, {1, 8, 8, 3}, {"gzip"}, {});
  CHECK_THROWS_WITH(pcam_h5(dir.string()), Contains(x + ": dataset 'x' declares rows with an empty dimension"));

  // Filters other than gzip and shuffle are refused when the file is opened, with the fix.
  write_chunks(x, {3, 8, 8, 3}, {1, 8, 8, 3}, {"fletcher32"}, {});
  CHECK_THROWS_WITH(pcam_h5(dir.string()),
                    Contains(x + ": dataset 'x' is stored with HDF5 filter 3") && Contains("compression=\"gzip\""));
  fs::remove_all(dir);
}

namespace {

// A one-dataset file "x" of uint8 `dims` in plain (H5D_CONTIGUOUS) or compact storage, written
// unless `data` is empty.
void write_unchunked(const std::string& path, H5D_layout_t layout, const std::vector<hsize_t>& dims,
                     const std::vector<std::uint8_t>& data) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_layout(properties, layout);
  const hid_t dataset = H5Dcreate2(file, "x", H5T_STD_U8LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
  if (!data.empty()) REQUIRE(H5Dwrite(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) >= 0);
  H5Dclose(dataset);
  H5Pclose(properties);
  H5Sclose(space);
  H5Fclose(file);
}

// Rewrites the data size that the file's one layout message (version 3) records: compact
// storage is `3 0 size(2 bytes)`, plain storage `3 1 address(8) size(8)`; little-endian.
void forge_layout_size(const std::string& path, H5D_layout_t layout, std::uint64_t size, std::uint64_t forged) {
  std::string bytes = test::slurp(path);
  const std::size_t width = layout == H5D_COMPACT ? 2 : 8, gap = layout == H5D_COMPACT ? 0 : 8;
  const auto little_endian = [&](std::uint64_t v) {
    std::string out;
    for (std::size_t i = 0; i < width; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
    return out;
  };
  const char kind = layout == H5D_COMPACT ? 0 : 1;
  std::vector<std::size_t> found;
  for (std::size_t at = 0; at + 2 + gap + width <= bytes.size(); ++at)
    if (bytes[at] == 3 && bytes[at + 1] == kind && bytes.compare(at + 2 + gap, width, little_endian(size)) == 0)
      found.push_back(at + 2 + gap);
  REQUIRE(found.size() == 1);
  bytes.replace(found[0], width, little_endian(forged));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

TEST_CASE(
    "pcam_h5: plain and compact datasets must store exactly their data as uint8, never other memory or black patches",
    "[datasets][pcam_h5][trust]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-pcam-h5-plain-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string x = (dir / "camelyonpatch_level_2_split_test_x.h5").string();
  write_u8((dir / "camelyonpatch_level_2_split_test_y.h5").string(), "y", {3, 1, 1, 1}, {0, 1, 0}, false);
  constexpr std::size_t bytes = 3 * 8 * 8 * 3;
  const auto data = counting(bytes, 0);
  for (const H5D_layout_t layout : {H5D_COMPACT, H5D_CONTIGUOUS}) {
    CAPTURE(layout);
    write_unchunked(x, layout, {3, 8, 8, 3}, data);
    {
      auto dataset = pcam_h5(dir.string());
      RgbImage image;
      dataset->read_pixels(dataset->samples().at(2), image);
      CHECK(image.pixels == std::vector<std::uint8_t>(data.begin() + 2 * bytes / 3, data.end()));
    }
    // A layout message that records fewer bytes than the dataset holds: libhdf5 read a compact
    // dataset's third patch from past the end of its buffer (found by hand, 2026-12-01).
    forge_layout_size(x, layout, bytes, 400);
    CHECK_THROWS_WITH(pcam_h5(dir.string()), Contains(x + ": dataset 'x' stores 400 bytes for 576 bytes of data"));
  }
  // Plain data never written (libhdf5 gave the fill value: three black patches).
  write_unchunked(x, H5D_CONTIGUOUS, {3, 8, 8, 3}, {});
  CHECK_THROWS_WITH(pcam_h5(dir.string()), Contains(x + ": dataset 'x' stores 0 bytes for 576 bytes of data"));

  // Signed labels: H5Dread clipped a label of -1 to 0, a tumour-free patch (found by hand,
  // 2026-12-01).
  write_unchunked(x, H5D_CONTIGUOUS, {3, 8, 8, 3}, data);
  const std::string y = (dir / "camelyonpatch_level_2_split_test_y.h5").string();
  const hid_t file = H5Fcreate(y.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const std::vector<hsize_t> label_dims{3, 1, 1, 1};
  const hid_t space = H5Screate_simple(4, label_dims.data(), nullptr);
  const hid_t labels = H5Dcreate2(file, "y", H5T_STD_I8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const std::int8_t values[3] = {-1, 1, 0};
  REQUIRE(H5Dwrite(labels, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
  H5Dclose(labels);
  H5Sclose(space);
  H5Fclose(file);
  CHECK_THROWS_WITH(pcam_h5(dir.string()),
                    Contains(y + ": dataset 'y' does not hold unsigned 8-bit integers") && Contains("dtype uint8"));
  fs::remove_all(dir);
}

namespace {

// Offsets of every occurrence of `text` in `bytes`.
std::vector<std::size_t> find_all(const std::string& bytes, const std::string& text) {
  std::vector<std::size_t> out;
  for (auto at = bytes.find(text); at != std::string::npos; at = bytes.find(text, at + 1)) out.push_back(at);
  return out;
}

void put_u64(std::string& bytes, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

TEST_CASE(
    "pcam_h5 reads HDF5 itself: forged structures, truncated files and the newer format are errors naming the file",
    "[datasets][pcam_h5][trust]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-pcam-h5-forged-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string x = (dir / "camelyonpatch_level_2_split_test_x.h5").string();
  const std::string y = (dir / "camelyonpatch_level_2_split_test_y.h5").string();

  // tests/fixtures/hdf5/forged_name_heap.h5 (7,408 bytes, found by fuzz_pcam_h5): its name heap
  // is gone; libhdf5 1.10.8 wrote through a null pointer in H5Dopen2 (`kgain data`: SIGSEGV).
  for (const auto& path : {x, y}) fs::copy_file(test::fixtures_dir() + "/hdf5/forged_name_heap.h5", path);
  CHECK_THROWS_WITH(pcam_h5(dir.string()), Contains(x + ": the root group's name heap") &&
                                               Contains("lies outside the file") && Contains("basveeling/pcam"));

  // A genuine pair opens; the same x cut short (an interrupted download) is refused.
  write_split(dir.string(), "test", 2);
  REQUIRE(pcam_h5(dir.string())->samples().size() == 4);
  const std::string whole = test::slurp(x);
  std::ofstream(x, std::ios::binary | std::ios::trunc) << whole.substr(0, whole.size() / 2);
  CHECK_THROWS_WITH(pcam_h5(dir.string()),
                    Contains(x + ": the file holds " + std::to_string(whole.size() / 2) +
                             " bytes where its superblock says " + std::to_string(whole.size())) &&
                        Contains("incomplete download"));

  // Chunk records forged in the leaf of x's chunk index ([N, 96, 96, 3] in chunks of one patch:
  // a node header of 24 bytes, then key 0, child 0, key 1, ...; a key is the stored size, the
  // filter mask and five 8-byte offsets, the first of which is the row).
  const auto forge_row_of_second_chunk = [&](std::uint64_t row) {
    std::string bytes = whole;
    const auto trees = find_all(bytes, std::string("TREE\x01\x00", 6));
    REQUIRE(trees.size() == 1);
    put_u64(bytes, trees[0] + 24 + 48 + 8 + 8, row);
    std::ofstream(x, std::ios::binary | std::ios::trunc) << bytes;
  };
  forge_row_of_second_chunk(0);  // two records for the chunk of row 0
  CHECK_THROWS_WITH(pcam_h5(dir.string()), Contains(x + ": dataset 'x' records one chunk twice"));
  forge_row_of_second_chunk(9);  // a chunk past the 4 rows
  CHECK_THROWS_WITH(pcam_h5(dir.string()),
                    Contains("places a chunk at element 9 of dimension 0, off the dataset's grid"));
  {  // the index's root made its own child: a loop
    std::string bytes = whole;
    const auto tree = find_all(bytes, std::string("TREE\x01\x00", 6)).at(0);
    bytes[tree + 5] = 1;                       // level 1: its children are nodes
    bytes[tree + 6] = 1, bytes[tree + 7] = 0;  // one child
    put_u64(bytes, tree + 24 + 48, tree);      // child 0: itself
    std::ofstream(x, std::ios::binary | std::ios::trunc) << bytes;
    CHECK_THROWS_WITH(pcam_h5(dir.string()),
                      Contains(x + ": the B-tree node at") && Contains("is reached twice (a forged file)"));
  }

  // A chunk index deeper than one node (libhdf5 keeps at most 64 chunks in a leaf): 200 patches
  // in chunks of one, each read back exactly.
  fs::remove(dir / "camelyonpatch_level_2_split_test_meta.csv");
  constexpr std::size_t patch = 8 * 8 * 3;
  std::vector<std::pair<std::vector<hsize_t>, std::vector<std::uint8_t>>> chunks;
  for (hsize_t i = 0; i < 200; ++i) chunks.push_back({{i, 0, 0, 0}, gzip(counting(patch, i))});
  write_chunks(x, {200, 8, 8, 3}, {1, 8, 8, 3}, {"gzip"}, chunks);
  write_u8(y, "y", {200, 1, 1, 1}, std::vector<std::uint8_t>(200, 1), false);
  REQUIRE(find_all(test::slurp(x), std::string("TREE\x01\x01", 6)).size() == 1);  // an inner node
  {
    auto dataset = pcam_h5(dir.string());
    const auto samples = dataset->samples();
    REQUIRE(samples.size() == 200);
    for (std::size_t i : {0, 63, 64, 65, 150, 199}) {
      RgbImage image;
      dataset->read_pixels(samples[i], image);
      CHECK(image.pixels == counting(patch, i));
    }
  }

  // The format libver="latest" writes (superblock 3, object headers 2): refused with the fix.
  {
    const hid_t access = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(access, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    const hid_t file = H5Fcreate(x.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access);
    const std::vector<hsize_t> dims{4, 8, 8, 3};
    const hid_t space = H5Screate_simple(4, dims.data(), nullptr);
    const hid_t dataset = H5Dcreate2(file, "x", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const auto data = counting(4 * 8 * 8 * 3, 0);
    REQUIRE(H5Dwrite(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) >= 0);
    H5Dclose(dataset);
    H5Sclose(space);
    H5Fclose(file);
    H5Pclose(access);
  }
  CHECK_THROWS_WITH(pcam_h5(dir.string()), Contains(x + ": HDF5 superblock version 3") &&
                                               Contains("rewrite the file with h5py without libver"));
  fs::remove_all(dir);
}
