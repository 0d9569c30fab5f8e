// Transferability per tap: feature-metric plugins on every variant's features, linear CKA
// between pretrained and random features, and how well each metric ranks the taps like a probe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <kgain/backbone.hpp>
#include <kgain/feature_metric.hpp>

namespace kgain::core {

struct NamedEstimator {
  std::string name;
  std::shared_ptr<FeatureMetric> metric;
};

struct TransferabilityRow {
  std::size_t tap_index = 0;
  std::string tap;
  std::string metric;      // a transferability estimator's name, or "cka" (pretrained vs random)
  double pretrained = 0;   // on the pretrained features (for "cka": mean CKA over seeds)
  double random_mean = 0;  // mean over random seeds (for "cka": empty)
  double random_sd = 0;
};

// Linear CKA (Kornblith et al. 2019) of two feature matrices of the same images:
// ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), with Xc, Yc centred. 1 for X and any
// rotation or isotropic scaling of it.
double linear_cka(const at::Tensor& x, const at::Tensor& y);

// The parts the study uses one variant at a time (so that memory holds one variant's features,
// and the pretrained ones beside them for CKA; study/run.cpp's evaluate stage), in this order.
// The estimators of each tap run side by side on `threads` workers, one LibTorch and one BLAS
// thread each, so the numbers do not depend on `threads` (blas_threads.hpp).
// Each estimator's score for one variant's features at several taps: scores[k][m] for features[k];
std::vector<std::vector<double>> score_estimators(const std::vector<at::Tensor>& features,
                                                  const std::vector<std::int64_t>& labels, std::int64_t num_classes,
                                                  const std::vector<NamedEstimator>& metrics, int threads);
// linear CKA of pretrained[k] against one random variant's random[k], per tap k;
std::vector<double> cka_per_tap(const std::vector<at::Tensor>& pretrained, const std::vector<at::Tensor>& random,
                                int threads);
// one tap's rows from scores[v][m] (every variant, in variant order) and, with_cka, the CKA
// against each random variant (in variant order).
std::vector<TransferabilityRow> transferability_rows(std::size_t tap_index, const std::string& tap,
                                                     const std::vector<Variant>& variants,
                                                     const std::vector<NamedEstimator>& metrics,
                                                     const std::vector<std::vector<double>>& scores, bool with_cka,
                                                     const std::vector<double>& cka);

// LEEP (Nguyen et al. 2020): the mean log-likelihood of the target labels under the
// "expected empirical predictor" built from the source model's class probabilities theta [n, Z]:
// P(y, z) = 1/n sum_i theta_iz [y_i = y], P(y | z) = P(y, z) / P(z),
// LEEP = 1/n sum_i log sum_z P(y_i | z) theta_iz. At most 0 (labels fully predictable).
double leep(const at::Tensor& source_probs, const std::vector<std::int64_t>& labels, std::int64_t num_classes);
// NCE (Tran et al. 2019): the negative conditional entropy -H(Y | Z) of the target labels given
// the source model's top class z_i = argmax theta_i, from counts. At most 0.
double nce(const at::Tensor& source_probs, const std::vector<std::int64_t>& labels, std::int64_t num_classes);

// Spearman rank correlation (average ranks for ties); NaN for fewer than 3 values or no spread.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace kgain::core
