// Metric: a plugin that scores a probe's predictions on held-out images.
//
// Metrics see plain vectors, not tensors, so a metric library builds without LibTorch's
// headers and can be checked against scikit-learn on small literal inputs.
// Threads: the core creates a metric once per run and calls score() from several probe-fitting
// threads at once: score() must not change the metric (keep it const and free of caches).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kgain/plugin.hpp"

namespace kgain {

// The predictions of one probe on one test fold.
struct Predictions {
  std::int64_t num_classes = 0;
  std::vector<std::int64_t> labels;  // true class of each image, in [0, num_classes)
  std::vector<double> scores;        // row-major images x num_classes class probabilities
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  // The class with the highest score for image i (the first one on ties, as numpy's argmax).
  std::int64_t predicted(std::int64_t i) const {
    std::int64_t best = 0;
    for (std::int64_t k = 1; k < num_classes; ++k)
      if (scores[i * num_classes + k] > scores[i * num_classes + best]) best = k;
    return best;
  }
};

class BOOST_SYMBOL_VISIBLE Metric : public Plugin {
 public:
  // The score, with scikit-learn's definition of the metric of the same name.
  virtual double score(const Predictions& predictions) const = 0;
  // True when larger is better (accuracy); false for losses (log-loss).
  virtual bool higher_is_better() const { return true; }
};

}  // namespace kgain
