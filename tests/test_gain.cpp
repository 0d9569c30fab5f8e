// The gain's bootstrap interval covers the truth at about its nominal rate, and the p-value
// tells a real difference from none.
#include "test_support.hpp"

#include <random>

#include "analyse/bootstrap.hpp"
#include "plan/registry.hpp"

using namespace kgain;
using namespace kgain::core;

namespace {

std::shared_ptr<Metric> accuracy() {
  static Registry registry = [] {
    Registry r;
    r.add_directory(test::plugin_dir());
    return r;
  }();
  return registry.create<Metric>("accuracy", Options("metrics", ""));
}

// Binary predictions on `labels` that are right with probability `p_correct`.
Predictions simulate(const std::vector<std::int64_t>& labels, double p_correct, std::mt19937_64& rng) {
  std::bernoulli_distribution right(p_correct);
  Predictions p;
  p.num_classes = 2;
  p.labels = labels;
  for (auto y : labels) {
    const std::int64_t predicted = right(rng) ? y : 1 - y;
    p.scores.push_back(predicted == 0 ? 0.8 : 0.2);
    p.scores.push_back(predicted == 1 ? 0.8 : 0.2);
  }
  return p;
}

}  // namespace

TEST_CASE("The paired bootstrap interval covers the true gain at roughly 95%", "[gain]") {
  // Truth: pretrained is right 80% of the time, each random seed 75%: the gain is 0.05.
  auto metric = accuracy();
  std::mt19937_64 rng(42);
  const int simulations = 200;
  int covered = 0;
  for (int sim = 0; sim < simulations; ++sim) {
    std::vector<std::int64_t> labels(300);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 2);
    const std::vector<Predictions> pretrained{simulate(labels, 0.80, rng)};
    std::vector<std::vector<Predictions>> random;
    for (int s = 0; s < 3; ++s) random.push_back({simulate(labels, 0.75, rng)});
    const GainInterval ci = bootstrap_gain(pretrained, random, *metric, 400, 0.95, static_cast<std::uint64_t>(sim));
    CHECK(ci.low <= ci.gain);
    CHECK(ci.gain <= ci.high);
    covered += ci.low <= 0.05 && 0.05 <= ci.high;
  }
  const double coverage = static_cast<double>(covered) / simulations;
  CAPTURE(coverage);
  CHECK(coverage >= 0.88);
  CHECK(coverage <= 0.995);
}

TEST_CASE("The bootstrap p-value separates a large gain from none", "[gain]") {
  auto metric = accuracy();
  std::mt19937_64 rng(7);
  std::vector<std::int64_t> labels(400);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 2);
  const std::vector<Predictions> strong{simulate(labels, 0.90, rng)};
  std::vector<std::vector<Predictions>> weak{{simulate(labels, 0.60, rng)}, {simulate(labels, 0.60, rng)}};
  const GainInterval big = bootstrap_gain(strong, weak, *metric, 1000, 0.95, 1);
  CHECK(big.gain > 0.2);
  CHECK(big.low > 0);
  CHECK(big.p_value <= 0.002);

  std::vector<std::vector<Predictions>> same{{strong[0]}};
  const GainInterval none = bootstrap_gain(strong, same, *metric, 1000, 0.95, 1);
  CHECK(none.gain == 0);
  CHECK(none.p_value == 1.0);
  // Same seed, same numbers; no replicates, no interval.
  CHECK(bootstrap_gain(strong, weak, *metric, 1000, 0.95, 1).low == big.low);
  CHECK(std::isnan(bootstrap_gain(strong, weak, *metric, 0, 0.95, 1).low));
}
