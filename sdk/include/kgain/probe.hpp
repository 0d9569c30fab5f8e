// Probe: a plugin that learns to predict the class from frozen features.
//
// The core creates a fresh probe for every (tap, fold, variant), calls fit() once with the
// training features, then predict_proba() on the test features. Features arrive raw; a probe
// standardizes them itself (with training statistics only), so that probes that need no
// scaling (kNN with cosine distance) are free not to.
//
// Folds together (optional): a probe whose fits share work across the folds of one tap (a
// closed-form probe can form every fold's Gram matrix from products of row blocks computed once)
// returns true from fits_folds_together(); the core then creates one fresh probe per (tap,
// variant) and calls fit_folds() once with the tap's features and every fold's rows, instead of
// fit() and predict_proba() per fold. fit_folds() must return, for every fold, what a fresh
// probe's fit() on that fold's training rows followed by predict_proba() on its test rows would
// return, up to rounding: it is a faster route to the same numbers, never a different protocol.
// A fold sees only its own training labels.
//
// Threads: the core creates a fresh probe for every fit (the factory calls one at a time) and
// calls fit() and predict_proba() of one probe from one thread (fit_folds() likewise); several
// probes fit at once in different threads, so a probe keeps no shared mutable (static) state.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

#include <ATen/core/Tensor.h>

#include "kgain/plugin.hpp"

namespace kgain {

// One fold of fit_folds(): rows of the tap's features, as int64 indices.
struct FoldRows {
  at::Tensor train;   // int64 [n_train]
  at::Tensor labels;  // int64 [n_train]: the classes of the training rows, in [0, num_classes)
  at::Tensor test;    // int64 [n_test]
};

class BOOST_SYMBOL_VISIBLE Probe : public Plugin {
 public:
  // features: float32 [n, d]; labels: int64 [n] in [0, num_classes); seed makes any randomness
  // reproducible.
  virtual void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes,
                   std::uint64_t seed) = 0;
  // Class probabilities, float64 [n, num_classes], rows summing to one.
  virtual at::Tensor predict_proba(const at::Tensor& features) const = 0;

  // Whether the core should call fit_folds() rather than fit() and predict_proba() per fold.
  virtual bool fits_folds_together() const { return false; }
  // features: float32 [n, d], the whole tap; for every fold, the class probabilities of its test
  // rows (float64 [n_test, num_classes]), as described above. Called only when
  // fits_folds_together() is true, once per probe.
  virtual std::vector<at::Tensor> fit_folds(const at::Tensor& features, const std::vector<FoldRows>& folds,
                                            std::int64_t num_classes, std::uint64_t seed) {
    (void)features, (void)folds, (void)num_classes, (void)seed;
    throw std::logic_error("fit_folds() called on a probe that does not fit folds together");
  }
};

}  // namespace kgain
