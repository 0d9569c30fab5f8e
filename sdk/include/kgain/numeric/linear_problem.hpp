// LinearProblem: the training rows of a linear probe, and the flat layout of its parameters.
//
// Probes that fit a linear model with kgain/numeric/lbfgs.hpp (logistic, linear SVM) share this: the
// standardized rows kept as float32 (the precision features arrive in; all arithmetic on them is
// float64, kgain/numeric/dense_kernels.hpp), the labels, and one flat float64 parameter vector laid out
// [w_0 .. w_{columns-1} (d each), b (columns)], so that an objective walks each class's weights
// contiguously. Two classes get one column (class 1's), as in scikit-learn.
// Threads: read-only after construction; safe from several threads.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

namespace kgain {

struct LinearProblem {
  LinearProblem(const at::Tensor& standardized, const at::Tensor& labels, std::int64_t num_classes)
      : rows(standardized.to(at::kFloat).contiguous()),
        labels(labels.to(at::kLong).contiguous()),
        n(standardized.size(0)),
        d(standardized.size(1)),
        columns(num_classes == 2 ? 1 : num_classes) {}

  at::Tensor rows;    // float32 [n, d], contiguous
  at::Tensor labels;  // int64 [n], contiguous
  std::int64_t n, d, columns;

  std::int64_t parameters() const { return (d + 1) * columns; }
  // The solution as weights [d, columns] and bias [columns] (float64), for at::addmm(bias, x, weights).
  std::pair<at::Tensor, at::Tensor> weights_and_bias(const std::vector<double>& theta) const {
    const at::Tensor t = at::tensor(theta, at::kDouble);
    return {t.narrow(0, 0, d * columns).view({columns, d}).t().contiguous(), t.narrow(0, d * columns, columns).clone()};
  }
};

}  // namespace kgain
