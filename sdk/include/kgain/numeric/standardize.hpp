// Standardizer: z-scores features with statistics of the training fold only.
//
// Probes use it so that the test fold never leaks into the scaling. A feature that is constant
// on the training fold gets standard deviation 1 (it stays constant rather than dividing by 0).
// "Constant" is scikit-learn's test (StandardScaler, 1.2): the variance is within the float64
// rounding error of computing it, var <= n eps var + (n eps mean)^2. A tiny but varying feature
// is scaled up like any other: deep taps of a random network can be 1e-15 in size and still
// carry signal, and an absolute threshold would throw it away.
//
// Why loops of its own: a study standardizes every training and test fold of every tap, and
// ATen's column variance (Welford's update, strided) and its chain of whole-matrix operations
// for (x - mean) / std (a float64 copy, then one more per operation) took more time than a
// kNN probe's float32 distance product at 1,280 features. Here the statistics are two passes
// (mean, then the mean squared deviation: the textbook two-pass variance) that read float32 rows
// as they come, and applying is one pass that writes the float64 result once; each value is
// (x - mean) / std rounded once per operation, as ATen's version gave it.
// Threads: fit() once, then apply() is const: safe from several threads.
#pragma once

#include <cmath>
#include <cstdint>

#include <ATen/ATen.h>

namespace kgain {

namespace detail {

// Column means and population variances of rows [n, d] (float or double), in float64.
template <typename T>
void column_moments(const T* x, std::int64_t n, std::int64_t d, double* mean, double* var) {
  for (std::int64_t l = 0; l < d; ++l) mean[l] = 0, var[l] = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = x + i * d;
    for (std::int64_t l = 0; l < d; ++l) mean[l] += static_cast<double>(row[l]);
  }
  for (std::int64_t l = 0; l < d; ++l) mean[l] /= static_cast<double>(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = x + i * d;
    for (std::int64_t l = 0; l < d; ++l) {
      const double c = static_cast<double>(row[l]) - mean[l];
      var[l] += c * c;
    }
  }
  for (std::int64_t l = 0; l < d; ++l) var[l] /= static_cast<double>(n);
}

// out[i, l] = (x[i, l] - mean[l]) / std[l] in float64; out may be x itself (T = double).
template <typename T>
void standardize_rows(const T* x, std::int64_t n, std::int64_t d, const double* mean, const double* std, double* out) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = x + i * d;
    double* o = out + i * d;
    for (std::int64_t l = 0; l < d; ++l) o[l] = (static_cast<double>(row[l]) - mean[l]) / std[l];
  }
}

// x as contiguous float32 or float64 rows [n, d] (converted only when it is neither).
inline at::Tensor rows_as_read(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2, "Standardizer: rows [n, d] expected, got ", x.dim(), " dimensions");
  if (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) return x.contiguous();
  return x.to(at::kDouble).contiguous();
}

}  // namespace detail

struct Standardizer {
  at::Tensor mean, std;  // float64 [d]

  // x: [n, d]; statistics in float64 (population standard deviation, as scikit-learn's StandardScaler).
  void fit(const at::Tensor& x) {
    const at::Tensor rows = detail::rows_as_read(x);
    const std::int64_t n = rows.size(0), d = rows.size(1);
    TORCH_CHECK(n > 0, "Standardizer: no rows to fit");
    mean = at::empty({d}, at::kDouble);
    at::Tensor var = at::empty({d}, at::kDouble);
    if (rows.scalar_type() == at::kFloat)
      detail::column_moments(rows.data_ptr<float>(), n, d, mean.data_ptr<double>(), var.data_ptr<double>());
    else
      detail::column_moments(rows.data_ptr<double>(), n, d, mean.data_ptr<double>(), var.data_ptr<double>());
    const double eps = 2.220446049250313e-16, tolerance = static_cast<double>(n) * eps;
    std = at::empty({d}, at::kDouble);
    for (std::int64_t l = 0; l < d; ++l) {
      const double v = var.data_ptr<double>()[l], m = mean.data_ptr<double>()[l];
      const bool constant = v <= tolerance * v + (tolerance * m) * (tolerance * m);
      std.data_ptr<double>()[l] = constant ? 1.0 : std::sqrt(v);
    }
  }
  // float64 [n, d]
  at::Tensor apply(const at::Tensor& x) const {
    const at::Tensor rows = detail::rows_as_read(x);
    at::Tensor out = at::empty(rows.sizes(), at::kDouble);
    if (rows.scalar_type() == at::kFloat)
      detail::standardize_rows(rows.data_ptr<float>(), rows.size(0), rows.size(1), mean.data_ptr<double>(),
                               std.data_ptr<double>(), out.data_ptr<double>());
    else
      detail::standardize_rows(rows.data_ptr<double>(), rows.size(0), rows.size(1), mean.data_ptr<double>(),
                               std.data_ptr<double>(), out.data_ptr<double>());
    return out;
  }
  // The same values written over x (float64 [n, d], contiguous, e.g. the copy fit() was given),
  // so that a probe on a large training fold holds one float64 copy of it instead of three.
  void apply_in_place(at::Tensor& x) const {
    TORCH_CHECK(x.scalar_type() == at::kDouble && x.is_contiguous() && x.dim() == 2,
                "Standardizer::apply_in_place: contiguous float64 rows expected");
    detail::standardize_rows(x.data_ptr<double>(), x.size(0), x.size(1), mean.data_ptr<double>(),
                             std.data_ptr<double>(), x.data_ptr<double>());
  }
};

}  // namespace kgain
