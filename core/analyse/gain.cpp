#include "analyse/gain.hpp"

#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <thread>

#include "analyse/bootstrap.hpp"

namespace kgain::core {

namespace {

// Which variant is the pretrained one (none in a random-only study) and which are random.
struct VariantRoles {
  std::optional<std::size_t> pretrained;
  std::vector<std::size_t> random;
};

VariantRoles roles_of(const std::vector<Variant>& variants) {
  VariantRoles r;
  for (std::size_t v = 0; v < variants.size(); ++v) {
    if (variants[v].kind == Variant::Kind::pretrained)
      r.pretrained = v;
    else
      r.random.push_back(v);
  }
  return r;
}

// One (tap, metric) row: scores averaged over folds, the random seeds' mean and spread, the gain
// and its bootstrap interval (drawn from the row's own seed, so that threads do not matter).
// Without pretrained weights the pretrained score, the gain and its interval are NaN.
void fill_row(GainRow& g, std::size_t task, std::size_t t, const NamedMetric& named, const Evaluation& evaluation,
              const VariantRoles& roles, const TapInfo& tap, std::int64_t feature_multiplier,
              const GainSettings& settings) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Metric& metric = *named.metric;
  const double sign = metric.higher_is_better() ? 1.0 : -1.0;
  static const std::vector<Predictions> none;
  const auto& pre = roles.pretrained ? evaluation.predictions[*roles.pretrained][t] : none;
  std::vector<std::vector<Predictions>> rnd;
  std::vector<double> random_scores;
  for (auto v : roles.random) {
    rnd.push_back(evaluation.predictions[v][t]);
    double s = 0;
    for (const auto& p : rnd.back()) s += metric.score(p) / static_cast<double>(rnd.back().size());
    random_scores.push_back(s);
  }
  if (!evaluation.rows.empty()) g.probe = evaluation.rows.front().probe;
  g.tap_index = t;
  g.tap = tap.name;
  g.metric = named.name;
  g.parameters = tap.parameters;
  g.macs = tap.macs;
  g.feature_dim = tap.feature_dim * feature_multiplier;
  for (const auto& p : pre) g.pretrained += metric.score(p) / static_cast<double>(pre.size());
  if (!roles.pretrained) g.pretrained = nan;
  for (double s : random_scores) g.random_mean += s / static_cast<double>(random_scores.size());
  double ss = 0;
  for (double s : random_scores) ss += (s - g.random_mean) * (s - g.random_mean);
  g.random_sd = random_scores.size() > 1 ? std::sqrt(ss / static_cast<double>(random_scores.size() - 1)) : 0.0;
  g.random_seeds = static_cast<int>(random_scores.size());
  g.gain = sign * (g.pretrained - g.random_mean);
  const double headroom = metric.higher_is_better() ? 1.0 - g.random_mean : g.random_mean;
  g.relative_gain = headroom > 1e-12 ? g.gain / headroom : nan;
  if (!roles.pretrained) {
    g.gain = g.relative_gain = g.gain_low = g.gain_high = g.p_value = g.pretrained_low = g.pretrained_high = nan;
    return;
  }
  const GainInterval ci =
      bootstrap_gain(pre, rnd, metric, settings.bootstrap, settings.confidence, settings.seed * 1000003ULL + task);
  g.gain_low = sign > 0 ? ci.low : -ci.high;
  g.gain_high = sign > 0 ? ci.high : -ci.low;
  g.p_value = ci.p_value;
  g.pretrained_low = ci.pretrained_low;
  g.pretrained_high = ci.pretrained_high;
}

// Per metric: the sweet spot (the shallowest tap within the best tap's interval, or within
// sweet_spot_epsilon of its score) and the tap of the largest gain.
void flag_taps(std::vector<GainRow>& rows, std::size_t taps, const std::vector<NamedMetric>& metrics,
               double sweet_spot_epsilon) {
  for (std::size_t m = 0; m < metrics.size(); ++m) {
    const bool higher = metrics[m].metric->higher_is_better();
    const auto row = [&](std::size_t t) -> GainRow& { return rows[t * metrics.size() + m]; };
    std::size_t best = 0, most = 0;
    for (std::size_t t = 1; t < taps; ++t) {
      if (higher ? row(t).pretrained > row(best).pretrained : row(t).pretrained < row(best).pretrained) best = t;
      if (row(t).gain > row(most).gain) most = t;
    }
    double threshold = higher ? row(best).pretrained_low : row(best).pretrained_high;
    if (sweet_spot_epsilon > 0 || std::isnan(threshold))
      threshold = row(best).pretrained + (higher ? -1 : 1) * sweet_spot_epsilon;
    for (std::size_t t = 0; t < taps; ++t)
      if (higher ? row(t).pretrained >= threshold : row(t).pretrained <= threshold) {
        row(t).sweet_spot = true;
        break;
      }
    row(most).max_gain = true;
  }
}

}  // namespace

std::vector<GainRow> compute_gain(const Evaluation& evaluation, const std::vector<Variant>& variants,
                                  const std::vector<TapInfo>& taps, const std::vector<NamedMetric>& metrics,
                                  std::int64_t feature_multiplier, const GainSettings& settings) {
  const VariantRoles roles = roles_of(variants);
  if (roles.random.empty()) return {};
  std::vector<GainRow> rows(taps.size() * metrics.size());
  // One task per (tap, metric), taken by whichever thread is free.
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t task = next++; task < rows.size(); task = next++) {
      const std::size_t t = task / metrics.size(), m = task % metrics.size();
      fill_row(rows[task], task, t, metrics[m], evaluation, roles, taps[t], feature_multiplier, settings);
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < std::max(1, settings.threads); ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (roles.pretrained) flag_taps(rows, taps.size(), metrics, settings.sweet_spot_epsilon);
  return rows;
}

}  // namespace kgain::core
