// CurvaturePreconditioner: the logistic objective's curvature, as one Gram matrix, for L-BFGS.
//
// Why: plain L-BFGS needs hundreds of passes over the rows to meet scikit-learn's rule on CNN
// features, because standardized CNN features are strongly correlated: the Hessian's
// eigenvalues span orders of magnitude, and L-BFGS's ten stored steps cannot learn that shape.
// The Hessian of the log-loss is a sum over rows of a_i a_i^T (a_i = [x_i, 1]) times each row's
// curvature in its logits, p_i (1 - p_i) for two classes and diag(p_i) - p_i p_i^T for k. With
// one weight per row, w_i = (1 - sum_c p_ic^2) / (k - 1) (p (1 - p) for two classes: exact),
// and G_w = sum_i w_i a_i a_i^T, the matrix
//     B = G_w + P/C                                       (two classes: the Hessian itself)
//     B = (I - 1 1^T / k) (x) G_w + I (x) P/C             (k classes)
// (P/C: the penalty, 1/C on weights, 0 on intercepts) has the Hessian's shape in feature space.
// L-BFGS started from B^-1 instead of a multiple of the identity (kgain/numeric/lbfgs.hpp,
// `preconditioner`) is left only the gap between the two to learn. B is formed at the starting
// point and formed again at the current point when the largest gradient entry has not halved in
// 20 iterations (the rows' curvatures have moved: on separable classes most p_i go to 0 or 1). The stopping rule reads
// the objective's own gradient: where a fit stops does not depend on B.
//
// In an orthonormal basis of class space whose first vector is the common shift 1 / sqrt(k), B is
// one factored block G_w + P/C per other direction and just the penalty along the shift (where
// the loss is flat; the intercepts' shift, flat for the whole objective, gets the curvature
// sum_i w_i: the gradient has no part along it, so its value does not matter).
// Cost per formation: one float32 BLAS product of n (d+1)^2 / 2 multiply-adds (kgain/numeric/gram.hpp) and
// a Cholesky factor of d+1 (float32: B only shapes the steps).
// Threads: one per fit; not shared.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>

#include <kgain/numeric/dense_kernels.hpp>
#include <kgain/numeric/gram.hpp>
#include <kgain/numeric/lbfgs.hpp>
#include <kgain/numeric/linear_problem.hpp>

namespace kgain_logistic {

class CurvaturePreconditioner {
 public:
  CurvaturePreconditioner(const kgain::LinearProblem& problem, double C) : problem_(problem), C_(C) {
    const std::int64_t k = problem.columns;
    if (k > 1) {  // an orthonormal basis of class space whose first vector is the common shift
      at::Tensor ones_first = at::eye(k, at::kDouble);
      ones_first.select(1, 0).fill_(1.0);
      classes_ = std::get<0>(at::linalg_qr(ones_first)).to(at::kFloat);
    }
  }

  // Forms B at theta (the LinearProblem's parameter layout). False when it does not factor.
  bool form(const double* theta) {
    const std::int64_t n = problem_.n, d = problem_.d, k = problem_.columns;
    const at::Tensor t = at::from_blob(const_cast<double*>(theta), {(d + 1) * k}, at::kDouble).to(at::kFloat);
    const at::Tensor logits = at::addmm(t.slice(0, d * k), problem_.rows, t.slice(0, 0, d * k).view({k, d}).t());
    at::Tensor w;
    if (k == 1) {
      const at::Tensor p = at::sigmoid(logits.squeeze(1));
      w = p * (1 - p);
    } else {
      const at::Tensor p = at::softmax(logits, 1);
      w = (1 - p.pow(2).sum(1)) / static_cast<double>(k - 1);
    }
    const at::Tensor scaled = problem_.rows * w.sqrt().unsqueeze(1);
    at::Tensor b = at::empty({d + 1, d + 1}, at::kDouble);
    b.slice(0, 0, d).slice(1, 0, d).copy_(kgain::gram(scaled));
    const at::Tensor sums = at::sum(problem_.rows * w.unsqueeze(1), {0}, false, at::kDouble);
    b.select(0, d).slice(0, 0, d).copy_(sums);
    b.select(1, d).slice(0, 0, d).copy_(sums);
    shift_intercept_ = w.sum().item<double>() + 1e-12;
    b[d][d] = shift_intercept_;
    b.diagonal().slice(0, 0, d).add_(1.0 / C_);
    // Factored in float32 (twice float64's rate; B only shapes the steps), in float64 when float32
    // cannot (a B too ill-conditioned for float32's precision).
    auto [factor, info] = at::linalg_cholesky_ex(b.to(at::kFloat));
    if (info.item<std::int64_t>() != 0) std::tie(factor, info) = at::linalg_cholesky_ex(b);
    if (info.item<std::int64_t>() != 0) return false;
    factor_ = factor.to(at::kFloat).contiguous();
    return true;
  }

  // Forms B at theta and has `settings` use it, formed again at the current point when the
  // largest gradient entry has not halved in 20 iterations. False (settings untouched) when B
  // does not factor at theta. The preconditioner must outlive the minimisation.
  bool attach(const double* theta, kgain::LbfgsSettings& settings) {
    if (!form(theta)) return false;
    recent_.clear();
    settings.preconditioner = [this](double* v) { (*this)(v); };
    settings.after_iteration = [this](const double* x, const double* gradient) {
      double largest = 0;
      for (std::int64_t i = 0; i < problem_.parameters(); ++i) largest = std::max(largest, std::abs(gradient[i]));
      recent_.push_back(largest);
      if (recent_.size() > 20 && largest > 0.5 * recent_[recent_.size() - 21]) {
        form(x);  // one that does not factor leaves the last B in place
        recent_.clear();
      }
    };
    return true;
  }

  // v <- B^-1 v, v in the layout of a LinearProblem's parameters [w_0 .. w_{k-1}, b].
  void operator()(double* v) const {
    const std::int64_t d = problem_.d, k = problem_.columns;
    at::Tensor columns = at::empty({d + 1, k}, at::kFloat);
    float* m = columns.data_ptr<float>();
    for (std::int64_t c = 0; c < k; ++c) {
      for (std::int64_t j = 0; j < d; ++j) m[j * k + c] = static_cast<float>(v[c * d + j]);
      m[d * k + c] = static_cast<float>(v[d * k + c]);
    }
    at::Tensor solved;
    if (k == 1) {
      solved = substitute(columns);
    } else {
      const at::Tensor rotated = columns.mm(classes_);
      at::Tensor shift = rotated.slice(1, 0, 1) * static_cast<float>(C_);
      shift[d].fill_(rotated[d][0] / static_cast<float>(shift_intercept_));
      solved = at::cat({shift, substitute(rotated.slice(1, 1, k))}, 1).mm(classes_.t());
    }
    solved = solved.contiguous();
    const float* s = solved.data_ptr<float>();
    for (std::int64_t c = 0; c < k; ++c) {
      for (std::int64_t j = 0; j < d; ++j) v[c * d + j] = s[j * k + c];
      v[d * k + c] = s[d * k + c];
    }
  }

 private:
  // B^-1 m for m [d+1, columns] (float32): forward, then backward substitution along the rows
  // of the factor, every column in the same pass over it (LibTorch's cholesky_solve copied the
  // 1,281 x 1,281 factor into LAPACK's layout on every call: more than the solve itself).
  at::Tensor substitute(const at::Tensor& m) const {
    const std::int64_t n = factor_.size(0), columns = m.size(1);
    const float* L = factor_.data_ptr<float>();
    at::Tensor yt = m.t().clone(at::MemoryFormat::Contiguous);  // [columns, n]
    float* y = yt.data_ptr<float>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t c = 0; c < columns; ++c)
        y[c * n + i] =
            (y[c * n + i] - kgain::dot_rows(L + i * n, y + c * n, static_cast<std::size_t>(i))) / L[i * n + i];
    for (std::int64_t i = n - 1; i >= 0; --i) {
      const float* row = L + i * n;
      for (std::int64_t c = 0; c < columns; ++c) {
        float* yc = y + c * n;
        const float yi = yc[i] /= row[i];  // held apart, so that the loop below vectorizes
        for (std::int64_t j = 0; j < i; ++j) yc[j] -= row[j] * yi;
      }
    }
    return yt.t();
  }

  const kgain::LinearProblem& problem_;
  double C_, shift_intercept_ = 1;
  std::vector<double> recent_;  // largest gradient entry after each iteration since B was formed
  at::Tensor factor_;           // float32 [d+1, d+1], lower Cholesky factor of G_w + P / C
  at::Tensor classes_;          // float32 [k, k], orthonormal, first column 1 / sqrt(k)
};

}  // namespace kgain_logistic
