// A real sweep: PCam images through MobileNetV1 0.25, pretrained and random, every tap, then
// the same config again, which must reuse the cache and give identical numbers.
#include "test_support.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/config.hpp"
#include "study/run.hpp"

using namespace kgain::core;
namespace fs = std::filesystem;

using kgain::test::lines;
using kgain::test::slurp;

TEST_CASE("A small PCam sweep writes one row per tap and variant, and a rerun reuses the cache", "[end_to_end]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-e2e-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config_path = (dir / "sweep.toml").string();
  std::ofstream(config_path) << "[run]\nthreads = 2\nbatch_size = 50\n"
                             << "[dataset]\nplugin = \"manifest\"\nroot = \"" << kgain::test::data_dir()
                             << "/pcam-mini\"\nlimit_per_class = 75\n"
                             << "[backbone]\nplugin = \"torchscript\"\nfile = \"" << kgain::test::models_dir()
                             << "/mobilenet_v1_0.25_128_quant.ts.pt\"\nnative_input_size = 128\n"
                             << "[variants]\nrandom_seeds = [0, 1]\n";
  const Config config = load_config(config_path);
  RunOptions options;
  options.out_dir = (dir / "run").string();

  const RunSummary first = run_study(config, options);
  CHECK(first.images == 300);  // 75 per class in train and in test; the valid images are never extracted
  CHECK(first.split_strategy == "dataset");
  CHECK(first.extraction.images_forwarded == 3 * 300);
  CHECK(first.extraction.images_from_store == 0);
  CHECK(first.extraction.segments_written == 3 * 2);  // 300 images = chunks of 256 and 44, 3 variants
  for (const char* file : {"results.csv", "gain.csv", "splits.csv", "taps.csv", "config.resolved.toml", "kgain.log"})
    CHECK(fs::exists(fs::path(options.out_dir) / file));

  // gain.csv: one row per tap and metric; results.csv: one per variant x tap x fold x metric.
  const auto gain = lines(slurp(options.out_dir + "/gain.csv"));
  REQUIRE(gain.size() == 1 + 14 * 3);
  CHECK(gain[0] ==
        "dataset,backbone,probe,tap_index,tap,metric,pretrained,pretrained_low,pretrained_high,random_mean,random_sd,"
        "random_seeds,"
        "gain,gain_low,gain_high,p_value,relative_gain,sweet_spot,max_gain,parameters,macs,feature_dim");
  const auto results = lines(slurp(options.out_dir + "/results.csv"));
  REQUIRE(results.size() == 1 + 3 * 14 * 1 * 3);
  std::set<std::pair<std::string, std::string>> variant_tap;
  for (std::size_t i = 1; i < results.size(); ++i) {
    std::vector<std::string> f;
    std::stringstream ss(results[i]);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    variant_tap.insert({f[3], f[6]});
    const double score = std::stod(f[9]);
    CHECK(score >= 0.0);
    CHECK(score <= 1.0);
  }
  CHECK(variant_tap.size() == 3 * 14);
  // The gain is the pretrained score minus the mean of the random ones, row by row.
  for (const auto& g : first.gain) CHECK(g.gain == Approx(g.pretrained - g.random_mean).margin(1e-12));
  // Per metric: one sweet spot, no deeper than the best tap; one tap of maximum gain, which has
  // the largest gain; every interval holds its point estimate.
  for (const std::string metric : {"accuracy", "balanced_accuracy", "macro_f1"}) {
    CAPTURE(metric);
    int sweet = 0, most = 0;
    std::size_t best = 0, sweet_tap = 0;
    double best_score = -1, max_gain = -1;
    for (const auto& g : first.gain) {
      if (g.metric != metric) continue;
      CHECK(g.gain_low <= g.gain + 1e-12);
      CHECK(g.gain <= g.gain_high + 1e-12);
      CHECK(g.pretrained_low <= g.pretrained_high);
      if (g.pretrained > best_score) best_score = g.pretrained, best = g.tap_index;
      max_gain = std::max(max_gain, g.gain);
      if (g.sweet_spot) ++sweet, sweet_tap = g.tap_index;
    }
    for (const auto& g : first.gain)
      if (g.metric == metric && g.max_gain) {
        ++most;
        CHECK(g.gain == max_gain);
      }
    CHECK(sweet == 1);
    CHECK(most == 1);
    CHECK(sweet_tap <= best);
  }
  CHECK(fs::exists(fs::path(options.out_dir) / "gain.json"));
  // Five transferability estimators and CKA per tap; the CKA of pretrained with random features is below 1.
  const auto transferability = lines(slurp(options.out_dir + "/transferability.csv"));
  CHECK(transferability.size() == 1 + 14 * 6);
  for (const auto& t : first.transferability)
    if (t.metric == "cka") CHECK(t.pretrained < 0.999);
  CHECK(first.rank_agreement.size() == 5);

  // ImageNet features beat random ones somewhere in the network on PCam.
  double best_gain = -1;
  for (const auto& g : first.gain)
    if (g.metric == "accuracy") best_gain = std::max(best_gain, g.gain);
  CHECK(best_gain > 0.02);

  const std::string gain_before = slurp(options.out_dir + "/gain.csv"),
                    results_before = slurp(options.out_dir + "/results.csv");
  const RunSummary second = run_study(config, options);
  CHECK(second.extraction.images_forwarded == 0);
  CHECK(second.extraction.images_decoded == 0);
  CHECK(second.extraction.images_from_store == 3 * 300);
  CHECK(slurp(options.out_dir + "/gain.csv") == gain_before);
  CHECK(slurp(options.out_dir + "/results.csv") == results_before);

  // A lost segment (a crash mid-write leaves none, since segments are renamed into place) is
  // recomputed alone: random-1's smaller one, of the 44 images after the first 256.
  fs::path lost;
  for (const auto& space : fs::directory_iterator(options.out_dir + "/cache"))
    if (slurp((space.path() / "key.txt").string()).find("\nvariant random-1\n") != std::string::npos)
      for (const auto& segment : fs::directory_iterator(space.path()))
        if (segment.path().extension() == ".kgseg" &&
            (lost.empty() || fs::file_size(segment.path()) < fs::file_size(lost)))
          lost = segment.path();
  REQUIRE(!lost.empty());
  fs::remove(lost);
  const RunSummary third = run_study(config, options);
  CHECK(third.extraction.segments_written == 1);
  CHECK(third.extraction.images_forwarded == 300 - 256);
  CHECK(third.extraction.images_decoded == 300 - 256);
  CHECK(slurp(options.out_dir + "/gain.csv") == gain_before);

  // Another config into the same directory is refused, not mixed.
  std::ofstream(config_path, std::ios::app) << "[features]\npooling = \"max\"\n";
  REQUIRE_THROWS_WITH(run_study(load_config(config_path), options),
                      Catch::Matchers::Contains("holds a run of a different config"));
  fs::remove_all(dir);
}

TEST_CASE("A native backbone without weights runs a random-only sweep with recalibrated batch norm",
          "[end_to_end][native]") {
  const fs::path dir = fs::temp_directory_path() / ("kgain-random-only-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string config_path = (dir / "random.toml").string();
  std::ofstream(config_path)
      << "[dataset]\nplugin = \"manifest\"\nroot = \"" << kgain::test::data_dir()
      << "/pcam-mini\"\nlimit_per_class = 40\n"
      << "[backbone]\nplugin = \"native\"\narchitecture = \"resnet18\"\ntaps = [\"layer1\", \"layer2\", \"layer3\", "
         "\"layer4\"]\n"
      << "[features]\ninput_size = 64\n[variants]\nrandom_seeds = [0, 1]\nrecalibrate_batch_norm = true\n"
      << "calibration_images = 64\n[metrics]\nnames = [\"accuracy\"]\n[analysis]\nbootstrap = 50\n";
  RunOptions options;
  options.out_dir = (dir / "run").string();
  const RunSummary summary = run_study(load_config(config_path), options);
  CHECK(summary.extraction.images_forwarded == 2 * 160);  // two random variants, no pretrained one
  REQUIRE(summary.gain.size() == 4);
  std::int64_t macs = 0;
  for (const auto& g : summary.gain) {
    CHECK(std::isnan(g.pretrained));
    CHECK(std::isnan(g.gain));
    CHECK(g.random_seeds == 2);
    CHECK((g.random_mean >= 0.3 && g.random_mean <= 1.0));
    CHECK(g.macs > macs);  // MACs grow with depth
    macs = g.macs;
  }
  CHECK(fs::exists(fs::path(options.out_dir) / "report.html"));
  // Without batch norm to recalibrate, the key is refused with the fix.
  std::string text = slurp(config_path);
  text.replace(
      text.find(
          "plugin = \"native\"\narchitecture = \"resnet18\"\ntaps = [\"layer1\", \"layer2\", \"layer3\", \"layer4\"]"),
      std::string(
          "plugin = \"native\"\narchitecture = \"resnet18\"\ntaps = [\"layer1\", \"layer2\", \"layer3\", \"layer4\"]")
          .size(),
      "plugin = \"torchscript\"\nfile = \"" + kgain::test::models_dir() + "/mobilenet_v1_0.25_128_quant.ts.pt\"");
  std::ofstream(config_path) << text;
  options.out_dir = (dir / "run2").string();
  REQUIRE_THROWS_WITH(run_study(load_config(config_path), options),
                      Catch::Matchers::Contains("recalibrate_batch_norm") && Catch::Matchers::Contains("native"));
  fs::remove_all(dir);
}
