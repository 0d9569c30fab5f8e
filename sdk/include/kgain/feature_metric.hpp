// FeatureMetric: a plugin that scores how transferable features are, without training a probe.
//
// One concept, one user-facing name: a *transferability estimator*. It is listed in a config's
// `[transferability] names`, written to transferability.csv, and is, for the SDK and `kgain
// list`, the plugin kind `feature_metric` implemented by this class (the kind's name is part of
// the ABI, so it stays).
// Transferability estimators (LogME, H-score, TransRate, GBC, ...) look at the features of the
// labelled images and the labels, and predict how well a classifier on them would do. kgain
// computes them at every tap and compares their ranking of the taps with the probes'.
// Threads: created once per run; score() of one object is called from one thread at a time,
// but different estimator objects run side by side: keep no mutable state shared between objects.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "kgain/plugin.hpp"

namespace kgain {

class BOOST_SYMBOL_VISIBLE FeatureMetric : public Plugin {
 public:
  // features: float32 [n, d], raw (not standardized); labels: int64 [n] in [0, num_classes).
  // Larger is better.
  virtual double score(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes) const = 0;
};

}  // namespace kgain
