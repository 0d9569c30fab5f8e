// minimize_lbfgs: L-BFGS for a probe's smooth convex objective, with scipy's stopping rule.
//
// Probes that fit by minimising a smooth objective (the logistic probe) share it. The objective
// writes the gradient at `x` into `gradient` and returns the value; the parameters are one flat
// float64 vector, so that a probe lays out its weights and bias in one buffer and computes the
// gradient in one pass over its features. Plain loops over std::vector: a study fits hundreds of
// small problems, where per-operation overhead (tensor dispatch, allocation) would dominate.
//
// Stopping rule: scipy's L-BFGS-B as scikit-learn calls it (`minimize(method="L-BFGS-B",
// options={"gtol": tol, "maxiter": max_iter})`, scipy's defaults otherwise), so that the same
// objective in the same scale stops where scikit-learn stops:
//   - the largest gradient entry is at most `gradient_tolerance` (scipy's pgtol; no bounds), or
//   - an iteration lowered the value by at most 2.22e-9 (scipy's factr 1e7 x machine epsilon)
//     relative to max(|f_before|, |f_after|, 1), or
//   - `max_iterations` iterations, or `max_evaluations` evaluations, were spent (not converged).
// The direction is the two-loop recursion over the last 10 steps (scipy's maxcor); the step
// meets the strong Wolfe conditions (c1 = 1e-4, c2 = 0.9), found by bracketing and cubic
// interpolation as in minFunc and PyTorch's LBFGS. The first step has length 1 / ||g||.
// A caller that knows a matrix B close to the objective's Hessian may set
// `preconditioner` to apply B^-1: the recursion then starts from B^-1 instead of a multiple of
// the identity (preconditioned L-BFGS; B^-1 as it is, not rescaled by the last step, since B
// already carries the curvature's size), the first step has length 1, and the stopping rule is
// unchanged (it reads the objective's own gradient). `after_iteration` lets the caller form B
// again as the fit moves.
// Threads: no shared state; run as many minimisations at once as there are threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <vector>

namespace kgain {

struct LbfgsSettings {
  double gradient_tolerance = 1e-4;  // scikit-learn's default tol
  std::int64_t max_iterations = 100;
  std::int64_t max_evaluations = 15000;                                     // scipy's maxfun
  double relative_decrease = 1e7 * std::numeric_limits<double>::epsilon();  // scipy's factr * eps
  int history = 10;
  // Optional: v <- B^-1 v for a symmetric positive definite B (see above).
  std::function<void(double* v)> preconditioner;
  // Optional: called after every iteration with the new point and its gradient; the caller may
  // change B here (L-BFGS's stored steps stay valid with any B).
  std::function<void(const double* x, const double* gradient)> after_iteration;
};

struct LbfgsResult {
  double value = 0;
  std::int64_t iterations = 0, evaluations = 0;
  bool converged = false;  // stopped by the gradient or the decrease test, not by a budget
};

// objective(x, gradient) -> value; both arrays hold x.size() values.
using LbfgsObjective = std::function<double(const double* x, double* gradient)>;

namespace lbfgs_detail {

using Vector = std::vector<double>;

inline double dot(const Vector& a, const Vector& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
inline double max_abs(const Vector& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

// The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to [lo, hi].
inline double cubic_minimum(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi) {
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (!(d2_square >= 0)) return (lo + hi) / 2;
  const double d2 = std::sqrt(d2_square);
  const double t = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                            : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
  return std::isfinite(t) ? std::min(std::max(t, lo), hi) : (lo + hi) / 2;
}

struct Point {
  double step = 0, value = 0, slope = 0;  // slope: gradient . direction
  Vector gradient;
};

// A step along `direction` from x (the point `start`, slope < 0) meeting the strong Wolfe
// conditions, or the best step tried (0 when none lowered the value). x_new: x + step direction.
inline Point strong_wolfe(const LbfgsObjective& objective, const Vector& x, const Vector& direction, const Point& start,
                          double first_step, Vector& x_new, std::int64_t& evaluations) {
  constexpr double c1 = 1e-4, c2 = 0.9, tolerance_change = 1e-9;
  constexpr int max_steps = 25;
  const double direction_max = max_abs(direction);
  const auto evaluate = [&](double step) {
    Point p;
    p.step = step;
    for (std::size_t i = 0; i < x.size(); ++i) x_new[i] = x[i] + step * direction[i];
    p.gradient.resize(x.size());
    p.value = objective(x_new.data(), p.gradient.data());
    p.slope = dot(p.gradient, direction);
    ++evaluations;
    return p;
  };
  Point previous = start, current = evaluate(first_step);
  Point bracket[2];
  int steps = 1;
  bool bracketed = false;
  while (steps < max_steps) {
    const bool too_high = !(current.value <= start.value + c1 * current.step * start.slope) ||
                          (steps > 1 && current.value >= previous.value);
    if (!too_high && std::abs(current.slope) <= -c2 * start.slope) return current;  // x_new holds it
    if (too_high || current.slope >= 0) {
      bracket[0] = std::move(previous), bracket[1] = std::move(current), bracketed = true;
      break;
    }
    const double lo = current.step + 0.01 * (current.step - previous.step), hi = current.step * 10;
    const double next = cubic_minimum(previous.step, previous.value, previous.slope, current.step, current.value,
                                      current.slope, lo, hi);
    previous = std::move(current);
    current = evaluate(next);
    ++steps;
  }
  if (!bracketed) bracket[0] = start, bracket[1] = std::move(current);
  // Zoom: shrink the bracket around a point that meets both conditions.
  bool insufficient_progress = false, done = false;
  int low = bracket[0].value <= bracket[1].value ? 0 : 1;
  while (!done && steps < max_steps) {
    if (std::abs(bracket[1].step - bracket[0].step) * direction_max < tolerance_change) break;
    const double a = std::min(bracket[0].step, bracket[1].step), b = std::max(bracket[0].step, bracket[1].step);
    double t = cubic_minimum(bracket[0].step, bracket[0].value, bracket[0].slope, bracket[1].step, bracket[1].value,
                             bracket[1].slope, a, b);
    const double eps = 0.1 * (b - a);
    if (std::min(b - t, t - a) < eps) {  // too close to an end: move inwards, at the second time of asking
      if (insufficient_progress || t >= b || t <= a) {
        t = std::abs(t - b) < std::abs(t - a) ? b - eps : a + eps;
        insufficient_progress = false;
      } else {
        insufficient_progress = true;
      }
    } else {
      insufficient_progress = false;
    }
    Point p = evaluate(t);
    ++steps;
    const int high = 1 - low;
    if (!(p.value <= start.value + c1 * p.step * start.slope) || p.value >= bracket[low].value) {
      bracket[high] = std::move(p);
    } else {
      if (std::abs(p.slope) <= -c2 * start.slope)
        done = true;
      else if (p.slope * (bracket[high].step - bracket[low].step) >= 0)
        bracket[high] = bracket[low];
      bracket[low] = std::move(p);
    }
    low = bracket[0].value <= bracket[1].value ? 0 : 1;
  }
  Point& best = bracket[low];
  for (std::size_t i = 0; i < x.size(); ++i) x_new[i] = x[i] + best.step * direction[i];
  return std::move(best);
}

}  // namespace lbfgs_detail

// Minimises `objective` from `x` (left holding the minimiser found).
inline LbfgsResult minimize_lbfgs(const LbfgsObjective& objective, std::vector<double>& x,
                                  const LbfgsSettings& settings = {}) {
  using lbfgs_detail::dot;
  using lbfgs_detail::Point;
  using lbfgs_detail::Vector;
  const std::size_t n = x.size();
  LbfgsResult result;
  Point here;
  here.gradient.resize(n);
  here.value = objective(x.data(), here.gradient.data());
  result.evaluations = 1;
  std::deque<Vector> steps, gradient_changes;
  std::deque<double> inverse_curvature;
  double scale = 1;  // initial inverse-Hessian diagonal: s.y / y.y of the last step
  Vector direction(n), x_new(n);
  std::vector<double> alpha(static_cast<std::size_t>(settings.history));
  while (true) {
    if (lbfgs_detail::max_abs(here.gradient) <= settings.gradient_tolerance) {
      result.converged = true;
      break;
    }
    if (result.iterations >= settings.max_iterations || result.evaluations >= settings.max_evaluations) break;
    // Two-loop recursion: direction = -H g.
    for (std::size_t i = 0; i < n; ++i) direction[i] = -here.gradient[i];
    for (std::size_t m = steps.size(); m-- > 0;) {
      alpha[m] = inverse_curvature[m] * dot(steps[m], direction);
      for (std::size_t i = 0; i < n; ++i) direction[i] -= alpha[m] * gradient_changes[m][i];
    }
    if (settings.preconditioner)
      settings.preconditioner(direction.data());
    else
      for (double& v : direction) v *= scale;
    for (std::size_t m = 0; m < steps.size(); ++m) {
      const double beta = inverse_curvature[m] * dot(gradient_changes[m], direction);
      for (std::size_t i = 0; i < n; ++i) direction[i] += (alpha[m] - beta) * steps[m][i];
    }
    here.slope = dot(here.gradient, direction);
    if (!(here.slope < 0)) {  // not a descent direction (rounding): restart from steepest descent once
      if (steps.empty()) break;
      steps.clear(), gradient_changes.clear(), inverse_curvature.clear(), scale = 1;
      continue;
    }
    const double first_step =
        result.iterations == 0 && !settings.preconditioner ? 1.0 / std::sqrt(dot(here.gradient, here.gradient)) : 1.0;
    Point next = lbfgs_detail::strong_wolfe(objective, x, direction, here, first_step, x_new, result.evaluations);
    ++result.iterations;
    if (next.step == 0) break;  // no step lowered the value: stop here, not converged
    Vector s(n), y(n);
    for (std::size_t i = 0; i < n; ++i) s[i] = x_new[i] - x[i], y[i] = next.gradient[i] - here.gradient[i];
    const double ys = dot(y, s);
    if (ys > 1e-10) {
      if (static_cast<int>(steps.size()) == settings.history)
        steps.pop_front(), gradient_changes.pop_front(), inverse_curvature.pop_front();
      if (!settings.preconditioner) scale = ys / dot(y, y);
      steps.push_back(std::move(s)), gradient_changes.push_back(std::move(y)), inverse_curvature.push_back(1.0 / ys);
    }
    const double before = here.value;
    x.swap(x_new);
    here.value = next.value;
    here.gradient.swap(next.gradient);
    if (settings.after_iteration) settings.after_iteration(x.data(), here.gradient.data());
    if (before - here.value <= settings.relative_decrease * std::max({std::abs(before), std::abs(here.value), 1.0})) {
      result.converged = true;
      break;
    }
  }
  result.value = here.value;
  return result;
}

}  // namespace kgain
