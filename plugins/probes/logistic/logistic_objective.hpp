// LogisticObjective: the logistic probe's objective and its gradient, one pass over the rows.
//
// scikit-learn's LogisticRegression(penalty="l2", C) objective in its own scale, over the
// parameters of a kgain::LinearProblem (kgain/numeric/linear_problem.hpp). Shared by the probe's two
// solvers (L-BFGS and newton.hpp) and by the tests that check them.
// Threads: const after construction; safe from several threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>

#include <kgain/numeric/dense_kernels.hpp>
#include <kgain/numeric/linear_problem.hpp>

namespace kgain_logistic {

// sum_i log_loss_i + ||W||^2 / (2 C) and its gradient over the parameters of a LinearProblem
// (kgain/numeric/linear_problem.hpp). One pass over the rows per evaluation: each row's logits and its
// share of the gradient are computed while the row is in cache; every sum is float64 and runs
// over the rows in order, so the result does not depend on threads.
class LogisticObjective {
 public:
  // `problem` must outlive the objective (one problem serves every C of a grid).
  LogisticObjective(const kgain::LinearProblem& problem, double C) : problem_(problem), C_(C) {}
  std::int64_t parameters() const { return problem_.parameters(); }
  const kgain::LinearProblem& problem() const { return problem_; }
  double C() const { return C_; }

  double operator()(const double* theta, double* gradient) const {
    const auto d = static_cast<std::size_t>(problem_.d), k = static_cast<std::size_t>(problem_.columns);
    const double* bias = theta + d * k;
    std::fill(gradient, gradient + (d + 1) * k, 0.0);
    std::vector<double> z(k);
    double loss = 0;
    const float* x = problem_.rows.data_ptr<float>();
    const std::int64_t* y = problem_.labels.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < problem_.n; ++i, x += d) {
      kgain::dots(x, theta, d, k, d, z.data());
      for (std::size_t c = 0; c < k; ++c) z[c] += bias[c];
      loss += residuals(z, y[i]);  // z now holds d loss_i / d z
      for (std::size_t c = 0; c < k; ++c) {
        kgain::axpy(z[c], x, gradient + c * d, d);
        gradient[d * k + c] += z[c];
      }
    }
    double squared_norm = 0;
    for (std::size_t j = 0; j < d * k; ++j) squared_norm += theta[j] * theta[j], gradient[j] += theta[j] / C_;
    return loss + squared_norm / (2 * C_);
  }

 private:
  // Row i's loss, and its derivatives with respect to its logits written over them.
  double residuals(std::vector<double>& z, std::int64_t label) const {
    if (problem_.columns == 1) {  // log(1 + e^z) - y z and sigmoid(z) - y, without overflow
      const double v = z[0], y = label == 1 ? 1.0 : 0.0, e = std::exp(-std::abs(v));
      z[0] = (v >= 0 ? 1 / (1 + e) : e / (1 + e)) - y;
      return std::max(v, 0.0) + std::log1p(e) - y * v;
    }
    const double top = *std::max_element(z.begin(), z.end());
    double sum = 0;
    for (double v : z) sum += std::exp(v - top);
    const double lse = top + std::log(sum), loss = lse - z[static_cast<std::size_t>(label)];
    for (std::size_t c = 0; c < z.size(); ++c)
      z[c] = std::exp(z[c] - lse) - (static_cast<std::int64_t>(c) == label ? 1.0 : 0.0);
    return loss;
  }
  const kgain::LinearProblem& problem_;
  double C_;
};

}  // namespace kgain_logistic
