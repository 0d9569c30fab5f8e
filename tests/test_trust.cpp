// Trust: every finding of the adversarial review (issue 13) as a test. Each asserts the error a
// user sees, or that the result is the right one, and that finished work is kept.
#include "test_support.hpp"
#include "trust_support.hpp"

#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <hdf5.h>
#include <opencv2/imgcodecs.hpp>

#include "config/config.hpp"
#include "extract/extraction.hpp"
#include "extract/feature_store.hpp"
#include "images/image.hpp"
#include "images/image_decode.hpp"
#include "plan/registry.hpp"
#include "study/run.hpp"
#include <kgain/util/zip_check.hpp>

using namespace kgain::core;
using namespace kgain::test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// --- a tiny stored zip writer, for crafted PyTorch archives --------------------------------
std::string zip_store(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out, directory;
  const auto put = [](std::string& s, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  for (const auto& [name, data] : members) {
    const std::uint32_t crc =
        kgain::zip_detail::crc32(reinterpret_cast<const unsigned char*>(data.data()), data.size());
    const std::size_t offset = out.size();
    put(out, 0x04034b50, 4), put(out, 20, 2), put(out, 0, 2), put(out, 0, 2), put(out, 0, 4), put(out, crc, 4);
    put(out, data.size(), 4), put(out, data.size(), 4), put(out, name.size(), 2), put(out, 0, 2);
    out += name + data;
    put(directory, 0x02014b50, 4), put(directory, 20, 2), put(directory, 20, 2), put(directory, 0, 2),
        put(directory, 0, 2);
    put(directory, 0, 4), put(directory, crc, 4), put(directory, data.size(), 4), put(directory, data.size(), 4);
    put(directory, name.size(), 2), put(directory, 0, 2), put(directory, 0, 2), put(directory, 0, 2),
        put(directory, 0, 2);
    put(directory, 0, 4), put(directory, offset, 4);
    directory += name;
  }
  const std::size_t at = out.size();
  out += directory;
  put(out, 0x06054b50, 4), put(out, 0, 2), put(out, 0, 2), put(out, members.size(), 2), put(out, members.size(), 2);
  put(out, directory.size(), 4), put(out, at, 4), put(out, 0, 2);
  return out;
}
std::string pickle_archive(const std::string& pickle) {
  return zip_store({{"archive/data.pkl", pickle}, {"archive/version", "3\n"}});
}

// Rewrites the central directory's CRC of every member to match its (edited) data: a forgery
// the CRC check cannot see, so the finiteness check must.
void refresh_zip_crcs(std::string& b) {
  for (std::size_t at = b.find("PK\x01\x02"); at != std::string::npos; at = b.find("PK\x01\x02", at + 4)) {
    const auto le = [&](std::size_t p, int n) { return kgain::zip_detail::le(b, p, n); };
    const std::size_t local = le(at + 42, 4), size = le(at + 20, 4);
    const std::size_t data = local + 30 + le(local + 26, 2) + le(local + 28, 2);
    const std::uint32_t crc = kgain::zip_detail::crc32(reinterpret_cast<const unsigned char*>(b.data() + data), size);
    for (int i = 0; i < 4; ++i) b[at + 16 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  }
}

}  // namespace

// Finding 1 -------------------------------------------------------------------------------
TEST_CASE("Trust 1: damaged or non-finite weights are refused naming the file and the tensor", "[trust]") {
  const fs::path dir = fresh_dir("weights");
  const std::string original = read_bytes(kgain::test::models_dir() + "/mobilenet_v1_0.25_128_quant.state_dict.pt");
  // 64 bytes in the middle of the file (inside the weights' storages) overwritten with 0xFF,
  // which is NaN as float32.
  std::string damaged = original;
  std::memset(damaged.data() + damaged.size() / 2, 0xFF, 64);
  write_bytes(dir / "damaged.pt", damaged);
  const auto config = [&](const fs::path& weights) {
    return "[dataset]\nplugin = \"folder\"\nroot = \"" + (dir / "data").string() +
           "\"\n[backbone]\nplugin = \"native\"\narchitecture = "
           "\"mobilenet_v1\"\nwidth = 0.25\nweights = \"" +
           weights.string() + "\"\n";
  };
  pcam_folder(dir, 4);
  const auto create = [&](const fs::path& weights) {
    const Config c = parse_config(config(weights), (dir / "c.toml").string());
    const auto registry = load_registry(c.plugin_paths);
    return registry.create<kgain::Backbone>(c.backbone.plugin, c.backbone.options);
  };
  REQUIRE_THROWS_WITH(create(dir / "damaged.pt"), Contains("damaged.pt") && Contains("CRC-32"));
  // The same damage with the CRCs forged to match: the NaNs themselves are found.
  refresh_zip_crcs(damaged);
  write_bytes(dir / "forged.pt", damaged);
  REQUIRE_THROWS_WITH(create(dir / "forged.pt"),
                      Contains("forged.pt") && Contains("holds NaN or infinite values") && Contains("tensor '"));
  // The untouched file loads.
  write_bytes(dir / "good.pt", original);
  REQUIRE_NOTHROW(create(dir / "good.pt"));
  fs::remove_all(dir);
}

TEST_CASE("Trust 1: non-finite features are an error naming the variant, tap and image, never a score", "[trust]") {
  std::vector<kgain::Sample> samples{{"a.png", 0, "", ""}, {"b.png", 1, "", ""}, {"c.png", 0, "", ""}};
  at::Tensor x = at::ones({3, 4});
  REQUIRE_NOTHROW(check_finite(x, "the features of variant 'random-0' at tap 3", samples, 0));
  x[1][2] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(check_finite(x, "the features of variant 'random-0' at tap 3", samples, 0),
                      Contains("variant 'random-0' at tap 3") && Contains("b.png"));
  x[1][2] = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(check_finite(x, "tap 7", samples, 1), Contains("c.png"));
}

TEST_CASE("Trust 1: a class or fold without images is an error, not a score of 0", "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("emptyfold");
  const fs::path root = pcam_folder(dir, 6);
  // Every image of one class unreadable (skipped): the folds train on one class only.
  for (const auto& e : fs::directory_iterator(root / "1_tumor")) write_bytes(e.path(), "not an image");
  REQUIRE_THROWS_WITH(run(study(folder_table(root, "on_bad_image = \"skip\"\n")), dir / "run"),
                      Contains("all of one class"));
  fs::remove_all(dir);
}

// Finding 2 -------------------------------------------------------------------------------
TEST_CASE("Trust 2: a stored segment whose data was zeroed (same size) is found by its checksum and recomputed",
          "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("chunk");
  const fs::path root = pcam_folder(dir, 12);
  const std::string config = study(folder_table(root));
  const RunSummary first = run(config, dir / "run");
  const std::string gain = read_bytes(dir / "run" / "gain.csv");
  // Zero a block in the middle of the pretrained variant's segment.
  fs::path segment;
  for (const auto& space : fs::directory_iterator(dir / "run" / "cache"))
    if (read_bytes(space.path() / "key.txt").find("\nvariant pretrained\n") != std::string::npos)
      for (const auto& e : fs::directory_iterator(space.path()))
        if (e.path().extension() == ".kgseg") segment = e.path();
  REQUIRE(!segment.empty());
  std::string bytes = read_bytes(segment);
  std::memset(bytes.data() + bytes.size() / 2, 0, 256);
  write_bytes(segment, bytes);
  const RunSummary second = run(config, dir / "run");
  CHECK(second.extraction.segments_written == 1);  // that variant's images only
  CHECK(second.extraction.images_forwarded == 24);
  CHECK(second.extraction.images_from_store == 24);  // the random variant's
  CHECK(fs::exists(segment.string() + ".damaged"));  // set aside, not deleted: there for a post-mortem
  CHECK(read_bytes(dir / "run" / "gain.csv") == gain);
  fs::remove_all(dir);
}

// Finding 3 -------------------------------------------------------------------------------
TEST_CASE("Trust 3: an image replaced in place, or a bad image fixed, is computed again alone", "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("stale");
  const fs::path root = pcam_folder(dir, 8);
  const std::string config = study(folder_table(root, "on_bad_image = \"skip\"\n"));
  std::vector<fs::path> tumour;
  for (const auto& e : fs::directory_iterator(root / "1_tumor")) tumour.push_back(e.path());
  std::sort(tumour.begin(), tumour.end());
  const std::string kept = read_bytes(tumour[0]);
  write_bytes(tumour[0], "broken");
  const RunSummary broken = run(config, dir / "run");
  REQUIRE(broken.extraction.bad_images.size() == 1);
  // Fixed: the image is back, with its features, and nothing is excluded.
  write_bytes(tumour[0], kept);
  const RunSummary fixed = run(config, dir / "run");
  CHECK(fixed.extraction.bad_images.empty());
  CHECK(fixed.extraction.images_forwarded == 1 * 2);  // that image, both variants
  // Replaced in place by another real patch (one the study has not seen): that image only.
  std::vector<fs::path> others;
  for (const auto& e : fs::directory_iterator(kgain::test::data_dir() + "/pcam-mini/1_tumor"))
    others.push_back(e.path());
  std::sort(others.begin(), others.end());
  write_bytes(tumour[1], read_bytes(others.back()));
  const RunSummary replaced = run(config, dir / "run");
  CHECK(replaced.extraction.images_forwarded == 1 * 2);
  // The same images again: nothing to compute.
  CHECK(run(config, dir / "run").extraction.images_forwarded == 0);
  // A run that does not skip decodes the bad image again (the store never holds one) and refuses it.
  write_bytes(tumour[3], "broken");
  run(config, dir / "run");
  REQUIRE_THROWS_WITH(run(study(folder_table(root)), dir / "run", /*replace=*/true),
                      Contains(tumour[3].filename().string()));
  fs::remove_all(dir);
}

// Finding 4 -------------------------------------------------------------------------------
TEST_CASE("Trust 4: hostile pickles are refused quickly, without crashing or allocating", "[trust]") {
  const fs::path dir = fresh_dir("pickle");
  const auto refused = [&](const std::string& name, const std::string& pickle) {
    write_bytes(dir / name, pickle_archive(pickle));
    const Config c = parse_config(
        "[dataset]\nplugin = \"folder\"\nroot = \".\"\n[backbone]\nplugin = \"native\"\narchitecture = "
        "\"resnet18\"\nweights = \"" +
            (dir / name).string() + "\"\n",
        (dir / "c.toml").string());
    const auto registry = load_registry(c.plugin_paths);
    REQUIRE_THROWS_WITH(registry.create<kgain::Backbone>(c.backbone.plugin, c.backbone.options), Contains(name));
  };
  // 1 MB of nested tuples: ')' then TUPLE1 a million times (would overflow the stack on release).
  std::string deep = "\x80\x02)";
  for (int i = 0; i < 1000000; ++i) deep += '\x85';
  refused("deep.pt", deep + ".");
  // A list that holds itself, through the memo.
  refused("cycle.pt", std::string("\x80\x02]q\x00h\x00"
                                  "a.",
                                  8));
  // BINUNICODE8 whose length wraps around.
  refused("wrap.pt", std::string("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff"
                                 ".",
                                 12));
  // LONG1 of 200 bytes.
  refused("long.pt", std::string("\x80\x02\x8a\xc8", 4) + std::string(200, '\x01') + ".");
  fs::remove_all(dir);
}

// Finding 5 -------------------------------------------------------------------------------
TEST_CASE("Trust 5: a second run into a directory in use is refused, naming the holder", "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("lock");
  const fs::path root = pcam_folder(dir, 4);
  fs::create_directories(dir / "run");
  const int fd = ::open((dir / "run" / ".kgain.lock").c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const std::string note = "pid 4242 on testhost";
  REQUIRE(::write(fd, note.data(), note.size()) == static_cast<ssize_t>(note.size()));
  REQUIRE_THROWS_WITH(run(study(folder_table(root)), dir / "run"),
                      Contains("another kgain run (pid 4242 on testhost)"));
  ::close(fd);  // released: the run goes ahead
  CHECK(run(study(folder_table(root)), dir / "run").images == 8);
  fs::remove_all(dir);
}

// Finding 6 -------------------------------------------------------------------------------
TEST_CASE("Trust 6: decompression bombs are refused from the header, slivers cost no memory", "[trust][images]") {
  const fs::path dir = fresh_dir("bombs");
  std::vector<float> out(3 * 64 * 64);
  // 1 x 40000 and 1 x 100000 PNGs (a few hundred bytes each).
  cv::imwrite((dir / "sliver40k.png").string(), cv::Mat(40000, 1, CV_8UC3, cv::Scalar(200, 100, 50)));
  cv::imwrite((dir / "sliver100k.png").string(), cv::Mat(100000, 1, CV_8UC3, cv::Scalar(200, 100, 50)));
  REQUIRE_NOTHROW(load_image((dir / "sliver40k.png").string(), {64, "pad"}, out.data()));
  REQUIRE_THROWS_AS(load_image((dir / "sliver100k.png").string(), {64, "pad"}, out.data()),
                    ImageError);  // over 65,535 px a side
  // 1 x 60000 is decodable, but scaled to a shorter side of 64 px it would be 245 megapixels.
  cv::imwrite((dir / "sliver60k.png").string(), cv::Mat(60000, 1, CV_8UC3, cv::Scalar(200, 100, 50)));
  REQUIRE_THROWS_WITH(load_image((dir / "sliver60k.png").string(), {64, "shorter_side_crop"}, out.data()),
                      Contains("resize = \"pad\""));
  REQUIRE_NOTHROW(load_image((dir / "sliver60k.png").string(), {64, "pad"}, out.data()));
  // A PNG whose header declares 100000 x 100000 pixels (with a valid CRC) is refused unread.
  std::string png = read_bytes(dir / "sliver40k.png");
  for (int i = 0; i < 4; ++i) png[16 + i] = png[20 + i] = "\x00\x01\x86\xa0"[i];
  const std::uint32_t crc = kgain::zip_detail::crc32(reinterpret_cast<const unsigned char*>(png.data() + 12), 17);
  for (int i = 0; i < 4; ++i) png[29 + i] = static_cast<char>((crc >> (24 - 8 * i)) & 0xFF);
  write_bytes(dir / "bomb.png", png);
  REQUIRE_THROWS_WITH(load_image((dir / "bomb.png").string(), {64, "pad"}, out.data()), Contains("100000 x 100000"));
  // An HDF5 file declaring 30000 x 30000 patches (sparse: a few KB on disk).
  fs::create_directories(dir / "pcam");
  for (const char* name : {"x", "y"}) {
    const std::string path =
        (dir / "pcam" / (std::string("camelyonpatch_level_2_split_test_") + name + ".h5")).string();
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t dims_x[4] = {1, 30000, 30000, 3}, dims_y[4] = {1, 1, 1, 1};
    const hid_t space = H5Screate_simple(4, name[0] == 'x' ? dims_x : dims_y, nullptr);
    const hid_t set = H5Dcreate2(file, name, H5T_NATIVE_UINT8, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(set), H5Sclose(space), H5Fclose(file);
  }
  const Config c = parse_config("[dataset]\nplugin = \"pcam_h5\"\nroot = \"" + (dir / "pcam").string() +
                                    "\"\n[backbone]\nplugin = \"native\"\n"
                                    "architecture = \"resnet18\"\n",
                                (dir / "c.toml").string());
  const auto registry = load_registry(c.plugin_paths);
  REQUIRE_THROWS_WITH(registry.create<kgain::Dataset>(c.dataset.plugin, c.dataset.options), Contains("forged"));
  fs::remove_all(dir);
}

// Finding 7 -------------------------------------------------------------------------------
TEST_CASE("Trust 7: a duplicated manifest row or a NUL byte in a path is an error", "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("manifest");
  const fs::path root = pcam_folder(dir, 6);
  std::ostringstream rows;
  rows << "path,label\n";
  for (const auto& cls : {"0_no_tumor", "1_tumor"})
    for (const auto& e : fs::directory_iterator(root / cls))
      rows << cls << '/' << e.path().filename().string() << ',' << cls << '\n';
  const std::string first = rows.str().substr(11, rows.str().find('\n', 11) - 11);
  write_bytes(root / "manifest.csv", rows.str() + first + "\n");
  const std::string table = "[dataset]\nplugin = \"manifest\"\nroot = \"" + root.string() + "\"\n";
  REQUIRE_THROWS_WITH(run(study(table), dir / "run"),
                      Contains("is listed twice") && Contains(first.substr(0, first.find(','))));
  write_bytes(root / "manifest.csv", rows.str() + std::string("0_no_tumor/x\0y.png,0_no_tumor\n", 30));
  REQUIRE_THROWS_WITH(run(study(table), dir / "run"), Contains("NUL byte"));
  fs::remove_all(dir);
}

TEST_CASE("Trust 7b: two files with the same bytes on both sides of a fold are refused, on one side they are one image",
          "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("same-content");
  const fs::path root = pcam_folder(dir, 6);
  std::vector<std::string> rows;
  for (const auto& cls : {"0_no_tumor", "1_tumor"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(root / cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (std::size_t i = 0; i < files.size(); ++i)
      rows.push_back(std::string(cls) + "/" + files[i].filename().string() + "," + cls + "," +
                     (i < 4 ? "train" : "test"));
  }
  // A copy of a training image under another name, in the test split: a test on a training image.
  fs::copy_file(root / rows[0].substr(0, rows[0].find(',')), root / "0_no_tumor" / "copy.jpg");
  const auto manifest = [&](const std::string& copy_split) {
    std::string text = "path,label,split\n";
    for (const auto& r : rows) text += r + "\n";
    write_bytes(root / "manifest.csv", text + "0_no_tumor/copy.jpg,0_no_tumor," + copy_split + "\n");
  };
  const std::string table = "[dataset]\nplugin = \"manifest\"\nroot = \"" + root.string() + "\"\n";
  // Both in training: allowed (logged), and the copy costs no forward pass of its own.
  manifest("train");
  const RunSummary both_train = run(study(table), dir / "train");
  CHECK(both_train.images == 13);
  CHECK(both_train.extraction.images_forwarded == 2 * 12);  // 12 distinct images, 2 variants
  manifest("test");
  REQUIRE_THROWS_WITH(run(study(table), dir / "test"),
                      Contains("have the same content") && Contains("copy.jpg") && Contains("inflate"));
  fs::remove_all(dir);
}

// Finding 8 -------------------------------------------------------------------------------
TEST_CASE("Trust 8: damage is told by content: trailing bytes and misnamed PNGs decode, a half JPEG does not",
          "[trust][images]") {
  const fs::path dir = fresh_dir("truncation");
  const std::string jpeg = read_bytes(*fs::directory_iterator(kgain::test::data_dir() + "/lc25000-lung-mini/lung_aca"));
  const cv::Mat reference = decode_image_bytes("ref.jpg", jpeg);
  write_bytes(dir / "trailing.jpg", jpeg + std::string(100, '\x42'));
  CHECK(cv::norm(decode_image_file((dir / "trailing.jpg").string()), reference, cv::NORM_INF) == 0);
  cv::imwrite((dir / "real.png").string(), reference);
  fs::rename(dir / "real.png", dir / "misnamed.jpg");
  CHECK(cv::norm(decode_image_file((dir / "misnamed.jpg").string()), reference, cv::NORM_INF) == 0);
  write_bytes(dir / "half.jpg", jpeg.substr(0, jpeg.size() / 2) + "\xFF\xD9");
  REQUIRE_THROWS_WITH(decode_image_file((dir / "half.jpg").string()), Contains("half.jpg") && Contains("damaged"));
  const std::string png = read_bytes(dir / "misnamed.jpg");
  write_bytes(dir / "half.png", png.substr(0, png.size() / 2) + png.substr(png.size() - 12));  // IEND glued on
  REQUIRE_THROWS_WITH(decode_image_file((dir / "half.png").string()), Contains("half.png") && Contains("PNG"));
  fs::remove_all(dir);
}

TEST_CASE("Trust 8: libjpeg decoding gives OpenCV's pixels on the real sets", "[trust][images]") {
  int compared = 0;
  for (const char* set : {"pcam-mini/1_tumor", "lc25000-lung-mini/lung_scc"}) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(kgain::test::data_dir() + "/" + set)) {
      if (++n > 40) break;
      const cv::Mat ours = decode_image_file(e.path().string());
      const cv::Mat theirs = cv::imread(e.path().string(), cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
      REQUIRE(ours.size() == theirs.size());
      CHECK(cv::norm(ours, theirs, cv::NORM_INF) == 0);
      ++compared;
    }
  }
  CHECK(compared == 80);
}

// Finding 9 -------------------------------------------------------------------------------
TEST_CASE("Trust 9: configs that would give a wrong number or write elsewhere are refused", "[trust][config]") {
  const std::string base =
      "[dataset]\nplugin = \"folder\"\nroot = \"x\"\n[backbone]\nplugin = \"native\"\narchitecture = "
      "\"mobilenet_v1\"\n";
  REQUIRE_THROWS_WITH(parse_config(base + "width = nan\n", "c.toml"), Contains("width: must be a finite number"));
  REQUIRE_THROWS_WITH(parse_config(base + "[metrics]\nnames = [\"accuracy\", \"accuracy\"]\n", "c.toml"),
                      Contains("the metric 'accuracy' is listed twice"));
  REQUIRE_THROWS_WITH(parse_config(base + "[transferability]\nnames = [\"logme\", \"logme\"]\n", "c.toml"),
                      Contains("listed twice"));
  for (const char* name : {"../x", "", "..", "a/b"})
    REQUIRE_THROWS_WITH(parse_config("[run]\nname = \"" + std::string(name) + "\"\n" + base, "c.toml"),
                        Contains("cannot name a run folder"));
  REQUIRE_THROWS_WITH(parse_config(base + "[features]\ninput_size = 4096\n", "c.toml"),
                      Contains("input_size: must be between 0 and 1024"));
}

TEST_CASE("Fuzzing finding: a [metrics] table with a metric's options but no names list", "[trust][config]") {
  // Found by tests/fuzz/fuzz_config in its first 10 s: a null dereference (undefined behaviour).
  const Config c = parse_config(
      "[dataset]\nplugin = \"folder\"\nroot = \"x\"\n[backbone]\nplugin = \"native\"\narchitecture = \"resnet18\"\n"
      "[metrics.accuracy]\nplugin = \"accuracy\"\n",
      "c.toml");
  CHECK(c.metrics.size() == 3);
}

TEST_CASE("Trust 9: duplicate, unknown or too few classes, and odd manifest headers, are errors",
          "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("classes");
  const fs::path root = pcam_folder(dir, 6);
  std::ostringstream rows;
  for (const auto& cls : {"0_no_tumor", "1_tumor"}) {
    int i = 0;
    for (const auto& e : fs::directory_iterator(root / cls))
      rows << cls << '/' << e.path().filename().string() << ',' << cls << ',' << (i++ % 2 ? "test" : "train") << '\n';
  }
  const auto manifest = [&](const std::string& header, const std::string& classes) {
    write_bytes(root / "manifest.csv", header + "\n" + rows.str());
    return "[dataset]\nplugin = \"manifest\"\nroot = \"" + root.string() + "\"\n" + classes;
  };
  REQUIRE_THROWS_WITH(
      run(study(manifest("path,label,split", "classes = [\"0_no_tumor\", \"1_tumor\", \"1_tumor\"]\n")), dir / "r"),
      Contains("'1_tumor' is listed twice"));
  REQUIRE_THROWS_WITH(
      run(study(manifest("path,label,split", "classes = [\"0_no_tumor\", \"1_tumor\", \"2_phantom\"]\n")), dir / "r"),
      Contains("'2_phantom' has no images"));
  REQUIRE_THROWS_WITH(run(study(manifest("path,label,split", "classes = [\"1_tumor\"]\n")), dir / "r"),
                      Contains("at least two classes"));
  REQUIRE_THROWS_WITH(run(study(manifest("path,label,label", "")), dir / "r"),
                      Contains("names the column 'label' twice"));
  // A byte-order mark before the header: the columns are still found, and the split is the manifest's.
  const RunSummary s = run(study(manifest("\xEF\xBB\xBFpath,label,split", "")), dir / "r");
  CHECK(s.split_strategy == "dataset");
  fs::remove_all(dir);
}

// Finding 10 ------------------------------------------------------------------------------
TEST_CASE("Trust 10: a failed run claims nothing, a rerun may add a metric, stale temporaries go",
          "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("claim");
  const fs::path root = pcam_folder(dir, 8);
  REQUIRE_THROWS_WITH(run(study(folder_table(root, "colour = \"blue\"\n")), dir / "run"),
                      Contains("unknown key 'colour'"));
  CHECK(!fs::exists(dir / "run" / "config.resolved.toml"));
  run(study(folder_table(root)), dir / "run");  // the corrected config, no --replace
  // A temporary chunk file of a killed run, then a rerun that adds a metric.
  fs::path cache_dir;
  for (const auto& e : fs::recursive_directory_iterator(dir / "run" / "cache"))
    if (e.path().filename() == "key.txt") cache_dir = e.path().parent_path();
  write_bytes(cache_dir / "pretrained" / "chunk-000000.bin.tmp.99999.0", "half a chunk");
  const RunSummary more =
      run(study(folder_table(root), "[metrics]\nnames = [\"accuracy\", \"macro_f1\", \"roc_auc\"]\n"), dir / "run");
  CHECK(more.extraction.images_forwarded == 0);
  CHECK(!fs::exists(cache_dir / "pretrained" / "chunk-000000.bin.tmp.99999.0"));
  // Another dataset into the same directory is still refused.
  const fs::path other = pcam_folder(dir / "other", 5);
  REQUIRE_THROWS_WITH(run(study(folder_table(other)), dir / "run"), Contains("holds a run of a different config"));
  fs::remove_all(dir);
}

TEST_CASE("Trust 10: a plugin that throws inside a probe worker fails the run with its message",
          "[trust][end_to_end]") {
  const fs::path dir = fresh_dir("throwing");
  const fs::path root = pcam_folder(dir, 8);
  const std::string extra =
      "[metrics]\nnames = [\"accuracy\", \"broken\"]\n[metrics.broken]\nplugin = \"throwing_metric\"\n";
  const std::string text = "[run]\nplugin_paths = [\"" + kgain::test::fixture_plugin_dir("throwing_metric") + "\"]\n" +
                           study(folder_table(root), extra).substr(std::string("[run]\n").size());
  REQUIRE_THROWS_WITH(run(text, dir / "run"), Contains("the scoring table is corrupt"));
  fs::remove_all(dir);
}
