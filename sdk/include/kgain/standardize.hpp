// Standardizer: z-scores features with statistics of the training fold only.
//
// Probes use it so that the test fold never leaks into the scaling. A feature that is constant
// on the training fold gets standard deviation 1 (it stays constant rather than dividing by 0).
#pragma once

#include <ATen/ATen.h>

namespace kgain {

struct Standardizer {
  at::Tensor mean, std;

  // x: [n, d]; statistics in float64 (population standard deviation, as scikit-learn's StandardScaler).
  void fit(const at::Tensor& x) {
    const at::Tensor xd = x.to(at::kDouble);
    mean = xd.mean(0);
    std = xd.std(0, /*unbiased=*/false);
    std = at::where(std > 1e-12, std, at::ones_like(std));
  }
  // float64 [n, d]
  at::Tensor apply(const at::Tensor& x) const { return (x.to(at::kDouble) - mean) / std; }
};

}  // namespace kgain
