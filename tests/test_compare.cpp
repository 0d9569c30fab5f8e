// Paired comparison of runs (kgain compare --paired) on real runs: a run against itself, against
// a copy whose weights were scrambled, against runs on other splits; the predictions file it
// reads; and its report in a real browser.
#include "test_support.hpp"
#include "test_files.hpp"
#include "test_plugins.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include <kgain/util/file_hash.hpp>
#include "config/config.hpp"
#include "compare/paired_comparison.hpp"
#include "write/predictions_file.hpp"
#include "write/report.hpp"
#include "study/run.hpp"

using namespace kgain::core;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

fs::path work() {
  static const fs::path dir = kgain::test::fresh_temp_dir("compare");
  return dir;
}

// MobileNetV1 0.25 (native, TensorFlow padding) with `weights`, on 40 LC25000 images per class,
// grouped 3-fold, 2 random seeds: a real study of ~10 s, run into `out`.
std::string run_into(const fs::path& out, const std::string& name, const std::string& weights,
                     const std::string& splits = "folds = 3") {
  const fs::path config = work() / (name + ".toml");
  std::ofstream(config) << "[run]\nname = \"" << name
                        << "\"\n[dataset]\nplugin = \"manifest\"\nname = \"lung\"\nroot = \"" << kgain::test::data_dir()
                        << "/lc25000-lung-mini\"\nlimit_per_class = 40\n[backbone]\nplugin = \"native\"\narchitecture "
                           "= \"mobilenet_v1\"\n"
                        << "width = 0.25\npadding = \"tf_same\"\nweights = \"" << weights
                        << "\"\n[features]\ninput_size = 128\n"
                        << "[variants]\nrandom_seeds = [0, 1]\n[splits]\n"
                        << splits << "\n[metrics]\nnames = [\"accuracy\", \"log_loss\"]\n"
                        << "[transferability]\nnames = []\ncka = false\n[analysis]\nbootstrap = 300\n";
  RunOptions options;
  options.out_dir = out.string();
  run_study(load_config(config.string()), options);
  return options.out_dir;
}

std::string run(const std::string& name, const std::string& weights, const std::string& splits = "folds = 3") {
  return run_into(work() / name, name, weights, splits);
}

// The run the tests compare against, made once per build of kgain_tests (test_files.hpp).
std::string pretrained_run() {
  static const std::string dir = kgain::test::made_once_per_build("compare-pretrained", [](const fs::path& out) {
    run_into(out, "pretrained", kgain::test::safetensors_fixtures() + "/weights.safetensors");
  });
  return dir;
}

// The same weights file with the values of every conv and linear weight shuffled within the
// tensor: the same numbers, none of the learned structure. Biases (batch norm folded) are kept.
std::string scrambled_weights() {
  const std::string in = kgain::test::safetensors_fixtures() + "/weights.safetensors",
                    out = (work() / "scrambled.safetensors").string();
  std::string bytes = kgain::test::slurp(in);
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  std::mt19937 rng(7);
  int scrambled = 0;
  for (const auto& [name, t] : header.items()) {
    if (name == "__metadata__" || t["dtype"] != "F32" || t["shape"].size() < 2) continue;
    const std::size_t begin = 8 + header_size + t["data_offsets"][0].get<std::size_t>(),
                      end = 8 + header_size + t["data_offsets"][1].get<std::size_t>();
    std::vector<float> values((end - begin) / 4);
    std::memcpy(values.data(), bytes.data() + begin, end - begin);
    std::shuffle(values.begin(), values.end(), rng);
    std::memcpy(bytes.data() + begin, values.data(), end - begin);
    ++scrambled;
  }
  REQUIRE(scrambled >= 14);  // the stem, 13 blocks (two convs each) and the classifier
  std::ofstream(out, std::ios::binary) << bytes;
  return out;
}

const PairedRow& row_at(const PairedComparison& c, const std::string& metric, std::size_t tap) {
  for (const auto& r : c.rows)
    if (r.metric == metric && r.tap_index == tap) return r;
  FAIL("no row for " << metric << " at tap " << tap);
  throw;
}

}  // namespace

TEST_CASE("A run compared with itself differs by exactly 0, interval [0, 0], p = 1", "[compare]") {
  PairedSettings settings;
  settings.threads = 2;
  const PairedComparison c = compare_runs({pretrained_run(), pretrained_run()}, settings);
  REQUIRE(c.taps.size() == 14);
  REQUIRE(c.rows.size() == 14 * 2);  // one pair, two metrics, 14 taps
  CHECK(c.replicates == 300);        // the run's own [analysis] bootstrap
  CHECK(c.shared_random_draw);
  for (const auto& r : c.rows) {
    CAPTURE(r.metric, r.tap);
    CHECK(r.score_difference == 0.0);
    CHECK(r.score_low == 0.0);
    CHECK(r.score_high == 0.0);
    CHECK(r.score_p == 1.0);
    CHECK(r.score_q == 1.0);
    CHECK(r.gain_difference == 0.0);
    CHECK(r.gain_low == 0.0);
    CHECK(r.gain_high == 0.0);
  }
}

TEST_CASE("Paired scores and gains are the runs' own gain.csv numbers", "[compare]") {
  const PairedComparison c = compare_runs({pretrained_run(), pretrained_run()}, PairedSettings{});
  const auto gain = nlohmann::json::parse(kgain::test::slurp(pretrained_run() + "/gain.json"));
  int checked = 0;
  for (const auto& g : gain["rows"]) {
    const PairedRow& r = row_at(c, g["metric"], g["tap_index"]);
    CHECK(r.score_a == Approx(g["pretrained"].get<double>()).epsilon(1e-12));
    CHECK(r.gain_a == Approx(g["gain"].get<double>()).epsilon(1e-12).margin(1e-15));
    ++checked;
  }
  CHECK(checked == 28);
}

TEST_CASE("Scrambled weights lose clearly to the pretrained ones, and the paired interval says so", "[compare]") {
  const std::string weak = run("scrambled", scrambled_weights());
  PairedSettings settings;
  settings.threads = 2;
  const PairedComparison c = compare_runs({pretrained_run(), weak}, settings);
  REQUIRE(c.runs.size() == 2);
  CHECK(c.runs[0].label == "pretrained");
  CHECK(c.runs[1].label == "scrambled");
  // The same architecture and seeds: identical random networks, so identical random baselines.
  CHECK(c.shared_random_draw);
  CHECK(c.identical_random_baselines);
  int clear = 0;
  for (std::size_t t = 0; t < c.taps.size(); ++t) {
    const PairedRow& acc = row_at(c, "accuracy", t);
    const PairedRow& loss = row_at(c, "log_loss", t);
    CAPTURE(t, acc.score_a, acc.score_b, acc.score_low, acc.score_high, loss.gain_difference);
    CHECK(acc.score_low <= acc.score_difference);
    CHECK(acc.score_difference <= acc.score_high);
    // Equal random baselines: the gain difference is the score difference (for a loss, its negative).
    CHECK(acc.gain_difference == Approx(acc.score_difference).margin(1e-12));
    CHECK(loss.gain_difference == Approx(-loss.score_difference).margin(1e-12));
    if (acc.score_low > 0) ++clear;
  }
  // Pretrained features are far better than scrambled ones past the first blocks (LC25000:
  // pretrained ~0.9 against ~0.6); the interval excludes 0 at most taps.
  CHECK(clear >= 9);
  const PairedRow& last = row_at(c, "accuracy", c.taps.size() - 1);
  CHECK(last.score_difference > 0.1);
  CHECK(last.score_p < 0.01);

  // The command writes the report, CSV and JSON; the CSV has a row per pair, metric and tap.
  const std::string html = (work() / "paired.html").string();
  write_paired_csv((work() / "paired.csv").string(), c);
  write_paired_report(c, html);
  CHECK(kgain::test::lines(kgain::test::slurp((work() / "paired.csv").string())).size() == 1 + 28);
  CHECK(last.score_q <= 0.05);  // clear after the adjustment for 14 taps too
  const std::string page = kgain::test::slurp(html);
  CHECK_THAT(page, Contains("Which run wins at each tap"));
  CHECK_THAT(page, Contains("scrambled − pretrained"));
  CHECK_THAT(page, Contains("random baselines are identical"));
}

TEST_CASE("Runs on other splits, without predictions or with a damaged predictions file are refused", "[compare]") {
  const std::string other = run("two-folds", kgain::test::safetensors_fixtures() + "/weights.safetensors", "folds = 2");
  REQUIRE_THROWS_WITH(compare_runs({pretrained_run(), other}, PairedSettings{}),
                      Contains("splits.csv") && Contains("differ") && Contains("did not test on the same images"));

  const fs::path copy = work() / "copy";
  fs::remove_all(copy);
  fs::copy(pretrained_run(), copy, fs::copy_options::recursive);
  fs::path file;
  for (const auto& e : fs::directory_iterator(copy / "predictions")) file = e.path();
  {  // one score byte flipped
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-100, std::ios::end);
    f.put('\x7f');
  }
  REQUIRE_THROWS_WITH(compare_runs({pretrained_run(), copy.string()}, PairedSettings{}),
                      Contains(file.string()) && Contains("checksum"));
  fs::remove_all(copy / "predictions");
  REQUIRE_THROWS_WITH(compare_runs({pretrained_run(), copy.string()}, PairedSettings{}),
                      Contains("holds no predictions file") && Contains("save_predictions"));
}

TEST_CASE("Benjamini-Hochberg adjusts p-values as R's p.adjust(method = \"BH\") does", "[compare]") {
  // p.adjust(c(0.01, 0.04, 0.03, 0.5), "BH") = 0.04, 0.05333, 0.05333, 0.5
  const auto q = benjamini_hochberg({0.01, 0.04, 0.03, 0.5});
  REQUIRE(q.size() == 4);
  CHECK(q[0] == Approx(0.04));
  CHECK(q[1] == Approx(0.16 / 3));
  CHECK(q[2] == Approx(0.16 / 3));
  CHECK(q[3] == Approx(0.5));
  const auto with_nan = benjamini_hochberg({0.02, std::nan(""), 0.02});
  CHECK(with_nan[0] == Approx(0.02));  // two tests, not three
  CHECK(std::isnan(with_nan[1]));
}

TEST_CASE("A predictions file reads back exactly what was written, and forged ones are refused", "[compare]") {
  RunPredictions p;
  p.probe = "logistic";
  p.num_classes = 2;
  p.variants = {"pretrained", "random-0"};
  p.taps = {"a", "b", "c"};
  p.test_images = {{4, 1}, {0, 2, 3}};
  p.config_hash = "00000000000000aa", p.splits_hash = "00000000000000bb", p.backbone_fingerprint = "native abc";
  p.image_identities = {1, 2, 3, 4, 0xffffffffffffffffULL};
  p.predictions.assign(2, std::vector<std::vector<kgain::Predictions>>(3));
  double v = 0.001;
  for (auto& per_tap : p.predictions)
    for (auto& per_fold : per_tap)
      for (const auto& images : p.test_images) {
        kgain::Predictions x;
        x.num_classes = 2;
        for (std::size_t i = 0; i < images.size(); ++i)
          x.labels.push_back(static_cast<std::int64_t>(i % 2)), x.scores.push_back(v), x.scores.push_back(1 - v),
              v += 0.0123;
        per_fold.push_back(x);
      }
  const std::string path = (work() / "roundtrip.kgpred").string();
  write_predictions_file(path, p);
  const RunPredictions back = read_predictions_file(path);
  CHECK(back.probe == p.probe);
  CHECK(back.variants == p.variants);
  CHECK(back.taps == p.taps);
  CHECK(back.test_images == p.test_images);
  CHECK(back.config_hash == p.config_hash);
  CHECK(back.splits_hash == p.splits_hash);
  CHECK(back.backbone_fingerprint == p.backbone_fingerprint);
  CHECK(back.image_identities == p.image_identities);
  for (std::size_t a = 0; a < 2; ++a)
    for (std::size_t t = 0; t < 3; ++t)
      for (std::size_t f = 0; f < 2; ++f) {
        CHECK(back.predictions[a][t][f].labels == p.predictions[a][t][f].labels);
        CHECK(back.predictions[a][t][f].scores == p.predictions[a][t][f].scores);  // bit for bit
      }
  const std::string bytes = kgain::test::slurp(path);
  CHECK_THROWS_WITH(parse_predictions(bytes.substr(0, bytes.size() - 9), "cut"), Contains("cut"));
  CHECK_THROWS_WITH(parse_predictions(bytes + "x", "long"), Contains("appended"));
  CHECK_THROWS_WITH(parse_predictions("KGPRED00" + bytes.substr(8), "old"), Contains("not a kgain predictions file"));
  std::string forged = bytes;
  forged[30] ^= 1;  // inside the header
  CHECK_THROWS_WITH(parse_predictions(forged, "forged"), Contains("header checksum"));
  // A score that is not a number, with both checksums made to match, is still refused.
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data() + 8, 8);
  std::string nan_scores = bytes;
  const double nan = std::nan("");
  std::memcpy(nan_scores.data() + 24 + header_size, &nan, 8);
  const std::uint64_t sum = kgain::hash64(nan_scores.data() + 24 + header_size, nan_scores.size() - 32 - header_size);
  std::memcpy(nan_scores.data() + nan_scores.size() - 8, &sum, 8);
  CHECK_THROWS_WITH(parse_predictions(nan_scores, "nan"), Contains("not a finite number"));
}

TEST_CASE("The paired report renders in headless Chromium with every legend inside its chart", "[compare][browser]") {
  const std::string chromium = kgain::test::chromium_path();
  if (chromium.empty()) {
    WARN("Chromium is not installed (apt-get install chromium): the browser check of the paired report is skipped");
    return;
  }
  // Long run names: the legend must move under the chart rather than run off its right edge.
  const fs::path a = work() / "MobileNetV2 pretrained on ImageNet, 1000 classes, quantization-aware";
  const fs::path b = work() / "MobileNetV2 pretrained on iNaturalist birds (964 species), the same architecture";
  for (const auto& dir : {a, b}) {
    fs::remove_all(dir);
    fs::copy(pretrained_run(), dir, fs::copy_options::recursive);
  }
  PairedSettings settings;
  settings.replicates = 50;
  const PairedComparison c = compare_runs({a.string(), b.string()}, settings);
  REQUIRE(c.runs[0].label == a.string());  // both runs are named "pretrained": told apart by directory
  std::string html;
  write_paired_report(c, (work() / "legends.html").string());
  html = kgain::test::slurp((work() / "legends.html").string());
  html.insert(
      html.rfind("</body>"),
      "<script>addEventListener('load',()=>{let inside=0,all=0,charts=0;for(const s of "
      "document.querySelectorAll('svg.kgain-chart')){"
      "if(s.closest('details'))continue;charts++;const w=s.width.baseVal.value,h=s.height.baseVal.value;"
      "for(const t of s.querySelectorAll('text.legend')){all++;const b=t.getBBox();"
      "if(b.width>0&&b.x>=0&&b.y>=0&&b.x+b.width<=w&&b.y+b.height<=h)inside++;}}"
      "const p=document.createElement('p');p.id='kgain-check';p.textContent='LEGENDS '+inside+' OF '+all+' IN '+charts;"
      "document.body.appendChild(p);});</script>");
  std::ofstream(work() / "legends-probe.html") << html;
  const std::string flags = chromium +
                            " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
                            " --disable-component-update --disable-sync --user-data-dir=" +
                            (work() / "chromium-profile").string();
  const std::string dom = (work() / "legends-dom.html").string();
  REQUIRE(
      std::system(("timeout 120 " + flags + " --virtual-time-budget=5000 --dump-dom file://" +
                   (work() / "legends-probe.html").string() + " > " + dom + " 2> " + (work() / "chromium.log").string())
                      .c_str()) == 0);
  std::smatch m;
  const std::string rendered = kgain::test::slurp(dom);
  REQUIRE(std::regex_search(rendered, m, std::regex("LEGENDS (\\d+) OF (\\d+) IN (\\d+)")));
  // Score, gain and score difference (two copies of one run: identical random baselines, so the
  // gain difference would repeat the score difference and is left out).
  CHECK(std::stoi(m[3]) == 3);
  CHECK(std::stoi(m[2]) >= 2 + 2 + 1);  // a line per series at least (the longest names wrap)
  CHECK(m[1] == m[2]);
}
