// Gain analysis: how much the pretrained weights add over random ones, tap by tap.
//
// For tap l and metric m, with S the score averaged over folds:
//   gain          = S_l(pretrained) - mean_s S_l(random_s)
//                   (for a loss, where lower is better: mean_s S_l(random_s) - S_l(pretrained),
//                   so that a positive gain always means that pretraining helps)
//   random_sd     = standard deviation over the random seeds (n-1 denominator; 0 for one seed)
//   relative_gain = gain / (1 - mean_s S_l(random_s)), the share of the random baseline's
//                   remaining headroom that pretraining wins (for a loss: gain / random mean);
//                   empty when the baseline has no headroom
//   gain_low, gain_high, p_value: the paired bootstrap of bootstrap.hpp
//   sweet_spot    = the shallowest tap whose pretrained score reaches the lower end of the best
//                   tap's interval (or lies within `epsilon` of the best score, when set)
//   max_gain      = the tap with the largest gain
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <kgain/backbone.hpp>

#include "evaluate/evaluation.hpp"

namespace kgain::core {

struct GainRow {
  std::string probe;
  std::size_t tap_index = 0;
  std::string tap;
  std::string metric;
  double pretrained = 0;
  double random_mean = 0;
  double random_sd = 0;
  int random_seeds = 0;
  double gain = 0;
  double relative_gain = 0;  // NaN when undefined
  double gain_low = 0, gain_high = 0, p_value = 1;
  double pretrained_low = 0, pretrained_high = 0;
  bool sweet_spot = false;
  bool max_gain = false;
  std::int64_t parameters = 0;
  std::int64_t macs = -1;  // multiply-accumulates per image up to the tap; -1 when the backbone cannot count them
  std::int64_t feature_dim = 0;
};

struct GainSettings {
  int bootstrap = 1000;  // replicates; 0: no intervals
  double confidence = 0.95;
  std::uint64_t seed = 0;
  double sweet_spot_epsilon = 0;  // > 0: use "within epsilon of the best score" instead of the interval
  int threads = 1;
};

// variants[v] as in the evaluation; metrics in config order.
std::vector<GainRow> compute_gain(const Evaluation& evaluation, const std::vector<Variant>& variants,
                                  const std::vector<TapInfo>& taps, const std::vector<NamedMetric>& metrics,
                                  std::int64_t feature_multiplier, const GainSettings& settings);

}  // namespace kgain::core
