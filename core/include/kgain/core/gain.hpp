// Gain analysis: how much the pretrained weights add over random ones, tap by tap.
//
// For tap l and metric m, with S the score averaged over folds:
//   gain          = S_l(pretrained) - mean_s S_l(random_s)
//   random_sd     = standard deviation over the random seeds (n-1 denominator; 0 for one seed)
//   relative_gain = gain / (1 - mean_s S_l(random_s)), the share of the random baseline's
//                   remaining headroom that pretraining wins (empty when the baseline is 1)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <kgain/backbone.hpp>

#include "kgain/core/evaluation.hpp"

namespace kgain::core {

struct GainRow {
  std::size_t tap_index = 0;
  std::string tap;
  std::string metric;
  double pretrained = 0;
  double random_mean = 0;
  double random_sd = 0;
  int random_seeds = 0;
  double gain = 0;
  double relative_gain = 0;  // NaN when undefined
  std::int64_t parameters = 0;
  std::int64_t feature_dim = 0;
};

std::vector<GainRow> compute_gain(const std::vector<ScoreRow>& rows, const std::vector<TapInfo>& taps,
                                  const std::vector<std::string>& metrics, std::int64_t feature_multiplier);

}  // namespace kgain::core
