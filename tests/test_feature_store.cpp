// The feature store shared between studies (issue 11): what a second study forwards, what a
// changed image costs, concurrent runs on one store, float16 storage, and memory that does not
// grow with the number of taps. Real runs of real networks on real PCam patches.
#include "test_support.hpp"
#include "test_files.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "extract/feature_store.hpp"
#include "study/run.hpp"

using namespace kgain::core;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path work() {
  static const fs::path dir = kgain::test::fresh_temp_dir("store");
  return dir;
}

// A copy of `per_class` PCam patches per class, as a folder dataset (so the test may edit them).
fs::path pcam_copy(const std::string& name, int per_class) {
  const fs::path root = work() / name;
  for (const char* cls : {"0_no_tumor", "1_tumor"}) {
    fs::create_directories(root / cls);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(kgain::test::data_dir() + "/pcam-mini/" + cls))
      files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (int i = 0; i < per_class; ++i)
      fs::copy_file(files[static_cast<std::size_t>(i)], root / cls / files[static_cast<std::size_t>(i)].filename(),
                    fs::copy_options::overwrite_existing);
  }
  return root;
}

// MobileNetV1 0.25 at 64 px, two random seeds, on a folder of patches; `probe` and `extra` vary.
std::string config_text(const fs::path& root, const fs::path& store, const std::string& probe,
                        const std::string& extra = "") {
  return "[run]\nthreads = 2\nfeature_store = \"" + store.string() + "\"\n[dataset]\nplugin = \"folder\"\nroot = \"" +
         root.string() + "\"\n" + extra + "[backbone]\nplugin = \"torchscript\"\nfile = \"" +
         kgain::test::models_dir() +
         "/mobilenet_v1_0.25_128_quant.ts.pt\"\nnative_input_size = 128\n[features]\ninput_size = "
         "64\n[variants]\nrandom_seeds = [0, 1]\n"
         "[splits]\nfolds = 2\n[probe]\n" +
         probe + "\n[transferability]\nnames = []\ncka = false\n[analysis]\nbootstrap = 0\n";
}

RunSummary run(const std::string& name, const std::string& text) {
  const fs::path config = work() / (name + ".toml");
  std::ofstream(config) << text;
  RunOptions options;
  options.out_dir = (work() / "runs" / name).string();
  return run_study(load_config(config.string()), options);
}

// Runs `argv` as a child process; its exit status and peak resident memory (kB).
std::pair<int, long> run_child(const std::vector<std::string>& argv) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int quiet = ::open("/dev/null", O_WRONLY);
    ::dup2(quiet, 1), ::dup2(quiet, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, usage.ru_maxrss};
}

std::vector<fs::path> segments(const fs::path& store) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(store))
    if (e.path().extension() == ".kgseg" || e.path().extension() == ".damaged") out.push_back(e.path());
  return out;
}

}  // namespace

TEST_CASE("A second study on the same images forwards no image: other probe, other splits, a subset, other paths",
          "[store][end_to_end]") {
  const fs::path store = work() / "shared-store";
  const fs::path root = pcam_copy("pcam-a", 40);
  const RunSummary first = run("logistic", config_text(root, store, "plugin = \"logistic\""));
  CHECK(first.extraction.images_forwarded == 80 * 3);
  // Another probe and other folds, into another run directory: everything comes from the store.
  std::string other_folds = config_text(root, store, "plugin = \"knn\"\nk = 5");
  other_folds.replace(other_folds.find("folds = 2"), 9, "folds = 4");
  const RunSummary knn = run("knn", other_folds);
  CHECK(knn.extraction.images_forwarded == 0);
  CHECK(knn.extraction.images_decoded == 0);
  CHECK(knn.extraction.images_from_store == 80 * 3);
  // A subset of the images.
  CHECK(run("subset", config_text(root, store, "plugin = \"logistic\"", "limit_per_class = 25\n"))
            .extraction.images_forwarded == 0);
  // The same files under another folder: features follow the content, not the path.
  const fs::path copy = pcam_copy("pcam-b", 40);
  CHECK(run("copy", config_text(copy, store, "plugin = \"logistic\"")).extraction.images_forwarded == 0);
  // Other pooling: another feature space, computed.
  std::string text = config_text(root, store, "plugin = \"logistic\"");
  text.replace(text.find("[features]\n"), 11, "[features]\npooling = \"max\"\n");
  CHECK(run("pooling-max", text).extraction.images_forwarded == 80 * 3);
}

TEST_CASE("Changing one image's bytes recomputes exactly that image, in every variant", "[store][end_to_end]") {
  const fs::path store = work() / "edit-store";
  const fs::path root = pcam_copy("pcam-edit", 20);
  const std::string text = config_text(root, store, "plugin = \"logistic\"");
  const RunSummary first = run("edit", text);
  REQUIRE(first.extraction.images_forwarded == 40 * 3);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(root / "1_tumor")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<fs::path> others;
  for (const auto& e : fs::directory_iterator(kgain::test::data_dir() + "/pcam-mini/1_tumor"))
    others.push_back(e.path());
  std::sort(others.begin(), others.end());
  fs::copy_file(others.back(), files[3], fs::copy_options::overwrite_existing);  // another real patch, same name
  const RunSummary second = run("edit", text);
  CHECK(second.extraction.images_forwarded == 1 * 3);
  CHECK(second.extraction.images_decoded == 1);
  CHECK(second.extraction.segments_written == 3);
}

TEST_CASE("Two runs writing into one store at the same time leave it whole", "[store][end_to_end]") {
  const fs::path store = work() / "concurrent-store";
  const fs::path root = pcam_copy("pcam-concurrent", 40);
  std::vector<std::string> configs;
  for (const char* name : {"c1", "c2"}) {
    configs.push_back((work() / (std::string(name) + ".toml")).string());
    std::ofstream(configs.back()) << config_text(root, store, "plugin = \"logistic\"");
  }
  // Both start together, both find an empty store, both compute and store every image.
  const std::string kgain = kgain::test::kgain_binary();
  const std::string command = kgain + " run " + configs[0] + " --out " + (work() / "runs" / "c1").string() +
                              " --quiet & " + kgain + " run " + configs[1] + " --out " +
                              (work() / "runs" / "c2").string() + " --quiet & wait";
  REQUIRE(std::system(("bash -c '" + command + "' > /dev/null 2>&1").c_str()) == 0);
  CHECK(kgain::test::slurp((work() / "runs" / "c1" / "gain.csv").string()) ==
        kgain::test::slurp((work() / "runs" / "c2" / "gain.csv").string()));
  // A third run finds every image, every segment passes its checks, and it agrees with them.
  const RunSummary third = run("c3", config_text(root, store, "plugin = \"logistic\""));
  CHECK(third.extraction.images_forwarded == 0);
  for (const auto& s : segments(store)) CHECK(s.extension() == ".kgseg");  // nothing set aside as damaged
  CHECK(kgain::test::slurp((work() / "runs" / "c3" / "gain.csv").string()) ==
        kgain::test::slurp((work() / "runs" / "c1" / "gain.csv").string()));
}

TEST_CASE("float16 storage halves the store and moves accuracy by at most 2 test images", "[store][end_to_end]") {
  const fs::path root = pcam_copy("pcam-half", 50);
  const RunSummary full = run("float32", config_text(root, work() / "store-32", "plugin = \"logistic\""));
  std::string text = config_text(root, work() / "store-16", "plugin = \"logistic\"");
  text.replace(text.find("[features]\n"), 11, "[features]\nstorage = \"float16\"\n");
  const RunSummary half = run("float16", text);
  std::uintmax_t bytes32 = 0, bytes16 = 0;
  for (const auto& s : segments(work() / "store-32")) bytes32 += fs::file_size(s);
  for (const auto& s : segments(work() / "store-16")) bytes16 += fs::file_size(s);
  CHECK(static_cast<double>(bytes16) / static_cast<double>(bytes32) == Approx(0.5).margin(0.02));
  REQUIRE(full.scores.size() == half.scores.size());
  for (std::size_t i = 0; i < full.scores.size(); ++i) {
    if (full.scores[i].metric != "accuracy") continue;
    CAPTURE(full.scores[i].variant, full.scores[i].tap, full.scores[i].fold);
    // 50 test images per fold: two images are 0.04.
    CHECK(std::abs(full.scores[i].score - half.scores[i].score) <=
          2.0 / static_cast<double>(full.scores[i].n_test) + 1e-12);
  }
}

// Hidden from test discovery ([.]): tests/CMakeLists.txt runs it alone (RUN_SERIAL), as its
// two runs use both cores; beside another test it took 122 s under ctest -j2, alone about 50.
TEST_CASE("Peak memory does not grow with the number of taps", "[.][store][end_to_end][memory]") {
  // ResNet-50 with random weights at 32 px on the 4,000 train and test PCam patches, three seeds:
  // 17 taps give 15,168 features per image (728 MB for all taps and variants, what kgain held
  // before it read tap by tap), the last tap alone 2,048. Both runs forward the same networks;
  // only the taps differ.
  long peak[2] = {0, 0};
  for (int all = 0; all < 2; ++all) {
    const fs::path config = work() / (all ? "all-taps.toml" : "one-tap.toml");
    std::ofstream(config)
        << "[run]\nthreads = 2\nbatch_size = 64\n[dataset]\nplugin = \"manifest\"\nroot = \"" << kgain::test::data_dir()
        << "/pcam-mini\"\n[backbone]\nplugin = \"native\"\narchitecture = \"resnet50\"\n"
        << (all ? "" : "taps = [\"layer4.2\"]\n")
        << "[features]\ninput_size = 32\n[variants]\nrandom_seeds = [0, 1, 2]\n"
        << "[probe]\nplugin = \"knn\"\nk = 5\n[transferability]\nnames = []\ncka = false\n[analysis]\nbootstrap = 0\n"
        << "save_predictions = false\n";
    const auto [status, kb] = run_child({kgain::test::kgain_binary(), "run", config.string(), "--out",
                                         (work() / "runs" / config.stem()).string(), "--quiet"});
    REQUIRE(status == 0);
    peak[all] = kb;
  }
  CAPTURE(peak[0], peak[1]);
  // Holding every tap would add ~700 MB (+60% or more). Tap by tap and variant by variant, with
  // free heap pages returned between them, the largest tap of one variant is all that is held;
  // before the pages were returned, the heap's holes grew the peak with every larger tap (+35%).
  CHECK(static_cast<double>(peak[1]) / static_cast<double>(peak[0]) < 1.25);
}
