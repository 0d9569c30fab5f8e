// The thread rules the SDK headers state, checked where they allow concurrency: one metric
// object scored from several threads at once (as the probe-fitting workers do), and a dataset's
// read_pixels and content_identity called from several decoding threads at once, give exactly
// the single-threaded results.
#include "test_support.hpp"
#include "test_plugins.hpp"

#include <filesystem>
#include <random>
#include <thread>

#include "plan/registry.hpp"
#include <kgain/dataset.hpp>
#include <kgain/metric.hpp>

using namespace kgain;
using namespace kgain::core;

namespace {

// Runs f(i) for i in [0, n) on `threads` threads at once.
template <class F>
void in_parallel(std::size_t n, int threads, F f) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < n; i += static_cast<std::size_t>(threads)) f(i);
    });
  for (auto& p : pool) p.join();
}

}  // namespace

TEST_CASE("One metric object scored from several threads at once gives the single-threaded scores",
          "[threads][metrics]") {
  std::mt19937_64 rng(7);
  std::vector<Predictions> inputs(64);
  for (auto& p : inputs) {
    p.num_classes = 3;
    for (int i = 0; i < 500; ++i) {
      p.labels.push_back(static_cast<std::int64_t>(rng() % 3));
      double a = 1 + rng() % 100, b = 1 + rng() % 100, c = 1 + rng() % 100, s = a + b + c;
      p.scores.insert(p.scores.end(), {a / s, b / s, c / s});
    }
  }
  for (const char* name : {"accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss"}) {
    CAPTURE(name);
    auto metric = test::plugins().create<Metric>(name, Options(std::string("metrics.") + name, ""));
    std::vector<double> serial, parallel(inputs.size());
    for (const auto& p : inputs) serial.push_back(metric->score(p));
    for (int round = 0; round < 5; ++round) {
      in_parallel(inputs.size(), 8, [&](std::size_t i) { parallel[i] = metric->score(inputs[i]); });
      CHECK(parallel == serial);
    }
  }
}

TEST_CASE("A dataset's read_pixels and content_identity from several threads at once equal the serial results",
          "[threads][datasets]") {
  // The whole-slide dataset: OpenSlide handles shared between threads, its handle cache under a lock.
  const std::string slides = test::generated_slides();
  Options options("dataset", "");
  options.set("slides", slides + "/mixed.csv");
  options.set("tile_size", std::int64_t{64});
  options.set("target_mpp", 1.0);
  options.set("tissue", false);
  options.set("labels", std::string("annotations"));
  auto dataset = test::plugins().create<Dataset>("wsi", options);
  const auto samples = dataset->samples();
  REQUIRE(samples.size() > 100);
  std::vector<std::vector<std::uint8_t>> serial(samples.size()), parallel(samples.size());
  std::vector<std::uint64_t> ids(samples.size()), parallel_ids(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    RgbImage image;
    REQUIRE(dataset->read_pixels(samples[i], image));
    serial[i] = image.pixels;
    REQUIRE(dataset->content_identity(samples[i], ids[i]));
  }
  in_parallel(samples.size(), 6, [&](std::size_t i) {
    RgbImage image;
    dataset->read_pixels(samples[i], image);
    parallel[i] = image.pixels;
    dataset->content_identity(samples[i], parallel_ids[i]);
  });
  CHECK(parallel == serial);
  CHECK(parallel_ids == ids);
}
