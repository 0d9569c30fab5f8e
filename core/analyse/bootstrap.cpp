#include "analyse/bootstrap.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace kgain::core {
namespace {

double mean_over_folds(const std::vector<Predictions>& folds, const Metric& metric) {
  double sum = 0;
  for (const auto& p : folds) sum += metric.score(p);
  return sum / static_cast<double>(folds.size());
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);  // numpy's linear interpolation
}

}  // namespace

Predictions resample(const Predictions& p, const std::vector<std::int64_t>& rows) {
  Predictions out;
  out.num_classes = p.num_classes;
  out.labels.reserve(rows.size());
  out.scores.reserve(rows.size() * p.num_classes);
  for (auto r : rows) {
    out.labels.push_back(p.labels[r]);
    out.scores.insert(out.scores.end(), p.scores.begin() + r * p.num_classes,
                      p.scores.begin() + (r + 1) * p.num_classes);
  }
  return out;
}

ReplicateSummary summarize_replicates(const std::vector<double>& replicates, double confidence) {
  ReplicateSummary out;
  if (replicates.empty()) {
    out.low = out.high = out.p_value = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  const double alpha = (1.0 - confidence) / 2.0;
  out.low = quantile(replicates, alpha);
  out.high = quantile(replicates, 1.0 - alpha);
  const auto n = static_cast<double>(replicates.size());
  const double below =
      static_cast<double>(std::count_if(replicates.begin(), replicates.end(), [](double g) { return g <= 0; }));
  const double above =
      static_cast<double>(std::count_if(replicates.begin(), replicates.end(), [](double g) { return g >= 0; }));
  out.p_value = std::min(1.0, std::max(2.0 * std::min(below, above) / n, 1.0 / n));
  return out;
}

GainInterval bootstrap_gain(const std::vector<Predictions>& pretrained,
                            const std::vector<std::vector<Predictions>>& random, const Metric& metric, int replicates,
                            double confidence, std::uint64_t seed) {
  GainInterval out;
  const double pretrained_score = mean_over_folds(pretrained, metric);
  double random_score = 0;
  for (const auto& folds : random) random_score += mean_over_folds(folds, metric) / static_cast<double>(random.size());
  out.gain = pretrained_score - random_score;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (replicates <= 0 || random.empty()) {
    out.low = out.high = out.p_value = out.pretrained_low = out.pretrained_high = nan;
    return out;
  }

  std::mt19937_64 rng(seed);
  std::vector<double> gains, pretrained_scores;
  gains.reserve(replicates);
  pretrained_scores.reserve(replicates);
  const std::size_t seeds = random.size(), folds = pretrained.size();
  std::vector<std::int64_t> rows;
  for (int b = 0; b < replicates; ++b) {
    std::vector<std::size_t> seed_draw(seeds);
    for (auto& s : seed_draw) s = static_cast<std::size_t>(rng() % seeds);
    double pre = 0, rnd = 0;
    for (std::size_t f = 0; f < folds; ++f) {
      const auto n = static_cast<std::uint64_t>(pretrained[f].size());
      rows.resize(n);
      for (auto& r : rows) r = static_cast<std::int64_t>(rng() % n);
      pre += metric.score(resample(pretrained[f], rows)) / static_cast<double>(folds);
      for (auto s : seed_draw) rnd += metric.score(resample(random[s][f], rows)) / static_cast<double>(folds * seeds);
    }
    gains.push_back(pre - rnd);
    pretrained_scores.push_back(pre);
  }
  const ReplicateSummary g = summarize_replicates(gains, confidence),
                         p = summarize_replicates(pretrained_scores, confidence);
  out.low = g.low;
  out.high = g.high;
  out.p_value = g.p_value;
  out.pretrained_low = p.low;
  out.pretrained_high = p.high;
  return out;
}

}  // namespace kgain::core
