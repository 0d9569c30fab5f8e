// Newton's method for the logistic probe's objective, for problems whose Hessian is cheap.
//
// Why: scikit-learn's stopping rule (largest gradient entry of the un-normalised sum at most
// tol = 1e-4) costs L-BFGS 100 to 600 iterations on CNN features, each a pass over the rows with
// an exp and a log per row. On the narrow taps of a CNN (d of 16 to a few hundred) that per-row
// work, not the arithmetic on features, is the time. Newton's method reaches the same rule in 9
// to 22 iterations. A Hessian (BLAS matrix products, then a Cholesky factor) is formed when the
// largest gradient entry fell by less than half in the last step, and otherwise reused: 2 to 8
// per fit (mean 2.2 with two classes, 5.9 with three; counted on bench/probe_speed.sh's 412
// Newton fits, every one of which met the rule without L-BFGS). Same objective, same rule on
// the same gradient: the model found is within tol of the optimum, as L-BFGS's is (usually
// closer: Newton's last steps shrink the gradient fast).
//
// The Hessian of sum_i log_loss + ||W||^2 / (2 C) in the layout of the augmented rows a_i = [x_i, 1]:
//   block (a, b) = sum_i a_i a_i^T p_ia (delta_ab - p_ib)   (multinomial, k columns)
//   H            = sum_i a_i a_i^T p_i (1 - p_i)            (two classes, one column)
// plus 1/C on every weight's diagonal. The intercepts are not penalised: softmax's intercepts
// may all move by the same amount without changing the loss, a flat direction that the float32
// products turn slightly negative; H gets curvature along that direction only (the gradient has
// no component along it, so the step is the same), which keeps it positive definite.
// A step that does not lower the objective enough (Armijo backtracking fails), or a Hessian that
// does not factor, ends the Newton phase early; the caller then finishes with L-BFGS from there.
// Threads: no shared state.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include <kgain/numeric/linear_problem.hpp>

namespace kgain_logistic {

// Whether Newton's method is expected to be cheaper than L-BFGS for this problem (n rows, d
// features, k weight columns), counted in multiply-adds at the rate of L-BFGS's row passes. A
// pass costs 2 n d k for the features plus the exps and logs of each row, about 150 (k + 1)
// multiply-adds' worth. Measured with bench/probe_speed.sh's features (pcam-mini, 3,000 training
// rows, two classes; LC25000, 1,440, three; MobileNetV2's 19 taps; docs/performance.md): Newton
// takes at most about 15 passes and 6 Hessians, each n (d+1)^2 k(k+1)/2 multiply-adds in BLAS
// products (about 5x the passes' rate) and a Cholesky factor of (k (d+1))^3 / 3 (about 2x).
// Plain L-BFGS (`preconditioned` false) spends about 160 + 0.4 d passes. L-BFGS with the
// curvature preconditioner (curvature_preconditioner.hpp) forms about two Gram matrices of
// (d+1)^2 (one block whatever k) and spends about 15 passes with two classes (its B is then the
// Hessian itself: 9 to 27 iterations, mean 10 to 16, on pcam's taps of up to 320 features) and
// 120 with more (B approximates the classes' coupling: 84 to 197, mean 106 to 138, on LC25000's
// taps of 160 features and more; counted with a temporary print). So Newton wins on narrow taps
// with three or more classes (up to about 100 features on LC25000), and nowhere with two once
// preconditioned.
inline bool newton_is_cheaper(std::int64_t n, std::int64_t d, std::int64_t k, bool preconditioned) {
  const double rows = static_cast<double>(n), a = static_cast<double>(d + 1), columns = static_cast<double>(k);
  const double pass = rows * (2 * static_cast<double>(d) * columns + 150 * (columns + 1));
  const double hessian = rows * a * a * columns * (columns + 1) / 2 / 5 + std::pow(columns * a, 3) / 3 / 2;
  const double newton = 6 * hessian + 15 * pass;
  if (!preconditioned) return newton < (160 + 0.4 * static_cast<double>(d)) * pass;
  const double gram = rows * a * a / 5 + std::pow(a, 3) / 3 / 2;
  return newton < 2 * gram + (k == 1 ? 15 : 120) * pass;
}

// The Cholesky factor of the objective's Hessian at `weights` ([d+1, k], augmented layout), or
// an undefined tensor when it does not factor. `augmented` holds the rows [x_i, 1] in float64
// (for the logits), `rows` the same values in float32 (for the products). The products run in float32 (BLAS's fastest;
// the Hessian only shapes the step, the gradient that decides convergence stays float64), the
// factorisation in float64.
inline at::Tensor factored_hessian(const at::Tensor& augmented, const at::Tensor& rows, const at::Tensor& weights,
                                   double C) {
  const std::int64_t width = augmented.size(1), d = width - 1, k = weights.size(1), size = k * width;
  const at::Tensor z = augmented.mm(weights);  // [n, k] logits (k = 1: class 1's)
  at::Tensor hessian = at::empty({size, size}, at::kDouble);
  if (k == 1) {
    const at::Tensor p = at::sigmoid(z);
    hessian.copy_(rows.t().mm(rows * (p * (1 - p)).to(at::kFloat)));
  } else {
    const at::Tensor p = at::softmax(z, 1);
    for (std::int64_t a = 0; a < k; ++a)
      for (std::int64_t b = a; b < k; ++b) {
        const at::Tensor w = p.select(1, a) * ((a == b ? 1.0 : 0.0) - p.select(1, b));
        const at::Tensor block = rows.t().mm(rows * w.to(at::kFloat).unsqueeze(1)).to(at::kDouble);
        hessian.slice(0, a * width, (a + 1) * width).slice(1, b * width, (b + 1) * width).copy_(block);
        if (b != a) hessian.slice(0, b * width, (b + 1) * width).slice(1, a * width, (a + 1) * width).copy_(block.t());
      }
  }
  const at::Tensor diagonal = hessian.diagonal();
  const double largest = diagonal.max().item<double>();
  for (std::int64_t c = 0; c < k; ++c) diagonal.slice(0, c * width, c * width + d).add_(1.0 / C);
  if (k == 1) {
    diagonal[d].add_(1e-10 * (1 + largest));  // the intercept's curvature vanishes on separable classes
  } else {  // the intercepts' common shift, the one flat direction, gets curvature; no step goes along it
    for (std::int64_t a = 0; a < k; ++a)
      for (std::int64_t b = 0; b < k; ++b) hessian[a * width + d][b * width + d].add_((1 + largest) / k);
  }
  const auto [factor, info] = at::linalg_cholesky_ex(hessian);
  return info.item<std::int64_t>() == 0 ? factor : at::Tensor();
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

struct NewtonOutcome {
  std::int64_t iterations = 0, hessians = 0;
  bool converged = false;  // the gradient rule holds at theta
};

// Minimises objective(theta, gradient) -> value (the logistic objective over `problem` with
// penalty 1/C) from theta by damped Newton steps, for at most max_iterations iterations.
template <class Objective>
NewtonOutcome minimize_newton(const kgain::LinearProblem& problem, double C, const Objective& objective,
                              std::vector<double>& theta, double tol, std::int64_t max_iterations) {
  const std::int64_t n = problem.n, d = problem.d, k = problem.columns, width = d + 1, size = k * width;
  const auto P = static_cast<std::size_t>(size);
  const at::Tensor rows = at::cat({problem.rows, at::ones({n, 1}, at::kFloat)}, 1), augmented = rows.to(at::kDouble);
  // theta's layout [w_0 .. w_{k-1}, b] against the augmented one [w_0, b_0, w_1, b_1, ...].
  std::vector<std::int64_t> order(P);
  for (std::int64_t c = 0; c < k; ++c)
    for (std::int64_t j = 0; j <= d; ++j)
      order[static_cast<std::size_t>(c * width + j)] = j < d ? c * d + j : d * k + c;
  const at::Tensor to_theta = at::tensor(order, at::kLong);
  const auto as_augmented = [&](const std::vector<double>& v) {
    return at::tensor(v, at::kDouble).index_select(0, to_theta).view({k, width}).t();  // [d+1, k]
  };
  std::vector<double> gradient(P), trial(P), trial_gradient(P);
  double value = objective(theta.data(), gradient.data());
  NewtonOutcome outcome;
  at::Tensor factor;
  double previous_largest = 0;
  for (;;) {
    const double largest = max_abs(gradient);
    if (largest <= tol) return outcome.converged = true, outcome;
    if (outcome.iterations >= max_iterations) return outcome;
    ++outcome.iterations;
    const bool fresh = !factor.defined() || largest > 0.5 * previous_largest;  // slow progress: a new Hessian
    if (fresh) {
      factor = factored_hessian(augmented, rows, as_augmented(theta), C);
      ++outcome.hessians;
      if (!factor.defined()) return outcome;
    }
    previous_largest = largest;
    const at::Tensor g = at::tensor(gradient, at::kDouble).index_select(0, to_theta).unsqueeze(1);
    const at::Tensor step_augmented = at::cholesky_solve(-g, factor).squeeze(1).contiguous();
    std::vector<double> step(P);
    const double* s = step_augmented.data_ptr<double>();
    for (std::size_t i = 0; i < P; ++i) step[static_cast<std::size_t>(order[i])] = s[i];
    double slope = 0;
    for (std::size_t i = 0; i < P; ++i) slope += gradient[i] * step[i];
    double t = 1, trial_value = 0;
    bool lowered = false;
    for (int halvings = 0; slope < 0 && halvings < 30 && !lowered; ++halvings, t /= 2) {  // Armijo, c1 = 1e-4
      for (std::size_t i = 0; i < P; ++i) trial[i] = theta[i] + t * step[i];
      trial_value = objective(trial.data(), trial_gradient.data());
      // Near the optimum the decrease Armijo asks for is below the value's float64 rounding:
      // there a step that lowers the largest gradient entry is taken.
      const bool within_rounding = std::abs(trial_value - value) <= 1e-12 * std::max(1.0, std::abs(value));
      lowered = trial_value <= value + 1e-4 * t * slope || (within_rounding && max_abs(trial_gradient) < largest);
    }
    if (!lowered) {
      if (fresh) return outcome;
      factor = at::Tensor();  // the old Hessian's step failed: try again with a new one
      continue;
    }
    theta.swap(trial), gradient.swap(trial_gradient), value = trial_value;
  }
}

}  // namespace kgain_logistic
