// Standardizer: z-scores features with statistics of the training fold only.
//
// Probes use it so that the test fold never leaks into the scaling. A feature that is constant
// on the training fold gets standard deviation 1 (it stays constant rather than dividing by 0).
// "Constant" is scikit-learn's test (StandardScaler, 1.2): the variance is within the float64
// rounding error of computing it, var <= n eps var + (n eps mean)^2. A tiny but varying feature
// is scaled up like any other: deep taps of a random network can be 1e-15 in size and still
// carry signal, and an absolute threshold would throw it away.
// Threads: fit() once, then apply() is const: safe from several threads.
#pragma once

#include <ATen/ATen.h>

namespace kgain {

struct Standardizer {
  at::Tensor mean, std;

  // x: [n, d]; statistics in float64 (population standard deviation, as scikit-learn's StandardScaler).
  void fit(const at::Tensor& x) {
    const at::Tensor xd = x.to(at::kDouble);
    mean = xd.mean(0);
    const at::Tensor var = xd.var(0, /*unbiased=*/false);
    const double n = static_cast<double>(x.size(0)), eps = 2.220446049250313e-16;
    const at::Tensor constant = var <= n * eps * var + (n * eps * mean).pow(2);
    std = at::where(constant, at::ones_like(var), var.sqrt());
  }
  // float64 [n, d]
  at::Tensor apply(const at::Tensor& x) const { return (x.to(at::kDouble) - mean) / std; }
  // The same values written over x (float64 [n, d], e.g. the copy fit() was given), so that a
  // probe on a large training fold holds one float64 copy of it instead of three.
  void apply_in_place(at::Tensor& x) const { x.sub_(mean).div_(std); }
};

}  // namespace kgain
