// Bootstrap: uncertainty of the knowledge gain at one tap, for one metric.
//
// The gain compares the pretrained network with random ones on the same test images, so the
// bootstrap is paired: each replicate draws the test images of every fold with replacement
// (the same draw for the pretrained and every random variant) and, independently, the random
// seeds with replacement; the replicate's gain is
//     mean_f S(pretrained, draw_f) - mean_f mean_{s in seed draw} S(random_s, draw_f).
// The interval is the percentile interval of the replicates, so it widens both with the test
// set's sampling noise and with the disagreement between random seeds. With few seeds (3 by
// default) the seed part is itself estimated from few values; see docs/protocol.md.
// The p-value of "pretrained and random score the same" is the two-sided bootstrap p-value:
// twice the share of replicates on the far side of zero, at least 1 / replicates.
#pragma once

#include <cstdint>
#include <vector>

#include <kgain/metric.hpp>

namespace kgain::core {

struct GainInterval {
  double gain = 0;           // on the full test folds
  double low = 0, high = 0;  // percentile interval of the gain
  double p_value = 1;
  double pretrained_low = 0, pretrained_high = 0;  // percentile interval of the pretrained score
};

// The rows `rows` of `p` (repeats allowed), as a bootstrap replicate draws them.
Predictions resample(const Predictions& p, const std::vector<std::int64_t>& rows);

// The percentile interval at `confidence` of bootstrap replicates (numpy's linear
// interpolation), and the two-sided bootstrap p-value of "the statistic is 0": twice the share of
// replicates on the far side of zero, at least 1 / replicates. NaNs for no replicates.
struct ReplicateSummary {
  double low = 0, high = 0, p_value = 1;
};
ReplicateSummary summarize_replicates(const std::vector<double>& replicates, double confidence);

// pretrained[f]: the pretrained variant's predictions on fold f; random[s][f]: seed s's.
// `replicates` 0 gives the point estimates with empty (NaN) intervals.
GainInterval bootstrap_gain(const std::vector<Predictions>& pretrained,
                            const std::vector<std::vector<Predictions>>& random, const Metric& metric, int replicates,
                            double confidence, std::uint64_t seed);

}  // namespace kgain::core
