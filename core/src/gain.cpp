#include "kgain/core/gain.hpp"

#include <cmath>
#include <limits>
#include <map>

namespace kgain::core {

std::vector<GainRow> compute_gain(const std::vector<ScoreRow>& rows, const std::vector<TapInfo>& taps,
                                  const std::vector<std::string>& metrics, std::int64_t feature_multiplier) {
  // (tap, metric, variant) -> sum and count over folds
  std::map<std::tuple<std::size_t, std::string, std::string>, std::pair<double, int>> by_variant;
  std::map<std::string, bool> is_pretrained;
  for (const auto& r : rows) {
    auto& acc = by_variant[{r.tap_index, r.metric, r.variant}];
    acc.first += r.score;
    acc.second += 1;
    is_pretrained[r.variant] = r.pretrained;
  }
  std::vector<GainRow> out;
  for (std::size_t t = 0; t < taps.size(); ++t) {
    for (const auto& m : metrics) {
      GainRow g;
      g.tap_index = t;
      g.tap = taps[t].name;
      g.metric = m;
      g.parameters = taps[t].parameters;
      g.feature_dim = taps[t].feature_dim * feature_multiplier;
      std::vector<double> random;
      bool have_pretrained = false;
      for (const auto& [variant, pretrained] : is_pretrained) {
        auto it = by_variant.find({t, m, variant});
        if (it == by_variant.end()) continue;
        const double mean = it->second.first / it->second.second;
        if (pretrained) g.pretrained = mean, have_pretrained = true;
        else random.push_back(mean);
      }
      if (!have_pretrained || random.empty()) continue;
      for (double s : random) g.random_mean += s / random.size();
      double ss = 0;
      for (double s : random) ss += (s - g.random_mean) * (s - g.random_mean);
      g.random_sd = random.size() > 1 ? std::sqrt(ss / (random.size() - 1)) : 0.0;
      g.random_seeds = static_cast<int>(random.size());
      g.gain = g.pretrained - g.random_mean;
      g.relative_gain = g.random_mean < 1.0 ? g.gain / (1.0 - g.random_mean) : std::numeric_limits<double>::quiet_NaN();
      out.push_back(g);
    }
  }
  return out;
}

}  // namespace kgain::core
