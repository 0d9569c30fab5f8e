// Probe: a plugin that learns to predict the class from frozen features.
//
// The core creates a fresh probe for every (tap, fold, variant), calls fit() once with the
// training features, then predict_proba() on the test features. Features arrive raw; a probe
// standardizes them itself (with training statistics only), so that probes that need no
// scaling (kNN with cosine distance) are free not to.
// Threads: the core creates a fresh probe for every (variant, tap, fold) fit (the factory calls
// one at a time) and calls fit() and predict_proba() of one probe from one thread; several
// probes fit at once in different threads, so a probe keeps no shared mutable (static) state.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "kgain/plugin.hpp"

namespace kgain {

class BOOST_SYMBOL_VISIBLE Probe : public Plugin {
 public:
  // features: float32 [n, d]; labels: int64 [n] in [0, num_classes); seed makes any randomness
  // reproducible.
  virtual void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes,
                   std::uint64_t seed) = 0;
  // Class probabilities, float64 [n, num_classes], rows summing to one.
  virtual at::Tensor predict_proba(const at::Tensor& features) const = 0;
};

}  // namespace kgain
