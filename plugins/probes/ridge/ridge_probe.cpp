// Probe `ridge`: ridge regression on one-vs-rest targets, in closed form
// (scikit-learn's RidgeClassifier).
//
// Targets are +1 for the class and -1 otherwise (one column for two classes, for class 1).
// With X and the targets centred on the training fold (the intercept is not penalised):
//     W = (Xc^T Xc + alpha I)^-1 Xc^T Yc,   b = mean(Y) - mean(X) W
// solved by a Cholesky factorization in float64. Features are standardized on the training
// fold first.
//
// Why the Gram matrix is formed in float32: Xc^T Xc (n d^2 multiply-adds) is nearly all of a
// fit's time, and BLAS forms it twice as fast in float32. Its rounding is then taken out by
// iterative refinement: the residual of the float64 system, Xc^T Yc - (Xc^T Xc + alpha I) W,
// is computed in float64 from the float64 rows (one pass over them) and solved again with the
// same factor, until the residual is as small as a float64 solve's. That converges when the
// system's condition number times float32's rounding (6e-8) is below one; when it does not,
// the Gram matrix is formed again in float64 and solved as before. Either way W is a float64
// solution. Scores: the softmax of the decision values (sigmoid for two classes); rankings
// and the top class are the decision values', log-loss on them is not calibrated.
//
// Folds together (Probe::fit_folds): in k-fold cross-validation every image trains in k - 1
// folds. The factor's Gram matrices of all folds come from products of row blocks formed once
// (kgain/numeric/fold_grams.hpp: a fold's is the sum over the blocks it trains on, centred and scaled
// as its own rows are), for a (k - 1)-th of the product work; the refinement above then takes
// out their float32 rounding against each fold's own float64 rows, so a fold's answer is the one
// fit() gives (tested). Layouts with more than two blocks per fold (repeated random splits),
// single splits, and blocks whose matrices would take more than 512 MB together are fitted fold
// by fold.
//
// Options: `declared_options` below (`kgain list --options ridge`).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <torch/torch.h>

#include <kgain/numeric/dense_kernels.hpp>
#include <kgain/numeric/fold_grams.hpp>
#include <kgain/numeric/gram.hpp>
#include <kgain/numeric/margin_scores.hpp>
#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/numeric/standardize.hpp>

namespace {

// One fold's training rows as the solve uses them, in float64: standardized on the fold, then
// centred (x_mean: the standardized rows' mean, zero up to rounding), and the centred
// one-vs-rest targets (+1 / -1).
struct TrainingSystem {
  kgain::Standardizer scaler;
  at::Tensor xc, x_mean, yc, y_mean;
};

TrainingSystem training_system(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes) {
  TrainingSystem t;
  // One float64 copy of the training features, standardized and then centred in place: at
  // 24,000 x 1,280 each copy is 245 MB (docs/performance.md, "Scale").
  at::Tensor x = features.to(torch::kFloat64).contiguous();
  t.scaler.fit(x);
  t.scaler.apply_in_place(x);
  const at::Tensor y = labels.to(torch::kLong);
  at::Tensor targets =
      num_classes == 2 ? (y == 1).to(torch::kFloat64).unsqueeze(1) : torch::one_hot(y, num_classes).to(torch::kFloat64);
  targets = targets * 2 - 1;
  t.x_mean = x.mean(0, true), t.y_mean = targets.mean(0, true);
  t.xc = x.sub_(t.x_mean);
  t.yc = targets - t.y_mean;
  return t;
}

class RidgeProbe : public kgain::Probe {
 public:
  static constexpr std::array declared_options{
      kgain::option::number("alpha", "1.0", "L2 strength (RidgeClassifier's alpha); 0 = least squares").at_least(0),
  };

  explicit RidgeProbe(const kgain::Options& options) : alpha_(options.get_double("alpha")) {}

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    torch::NoGradGuard no_grad;
    TrainingSystem t = training_system(features, labels, num_classes);
    if (alpha_ == 0) return solve(t, at::Tensor());
    at::Tensor system = kgain::gram(t.xc.to(torch::kFloat)).to(torch::kFloat64);
    system.diagonal().add_(alpha_);
    solve(t, system);
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(weights_.defined(), "ridge: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    return kgain::scores_from_margins(torch::addmm(bias_, scaler_.apply(features), weights_));
  }

  bool fits_folds_together() const override { return true; }

  std::vector<at::Tensor> fit_folds(const at::Tensor& features, const std::vector<kgain::FoldRows>& folds,
                                    std::int64_t num_classes, std::uint64_t seed) override {
    torch::NoGradGuard no_grad;
    const std::vector<kgain::RowBlock> blocks = kgain::row_blocks(features.size(0), folds);
    std::vector<at::Tensor> out;
    // The blocks' float32 Gram matrices are held together: past 512 MB (ten folds of 3,600
    // features), fold by fold, one matrix at a time, costs less memory than it saves time.
    const double block_bytes = static_cast<double>(blocks.size()) * 4.0 * static_cast<double>(features.size(1)) *
                               static_cast<double>(features.size(1));
    if (folds.size() < 2 || alpha_ == 0 || blocks.size() > 2 * folds.size() || block_bytes > 512.0 * (1 << 20)) {
      for (const auto& f : folds) {
        fit(features.index_select(0, f.train), f.labels, num_classes, seed);
        out.push_back(predict_proba(features.index_select(0, f.test)));
      }
      return out;
    }
    const kgain::FoldGrams grams(features, blocks);
    for (std::size_t f = 0; f < folds.size(); ++f) {
      TrainingSystem t = training_system(features.index_select(0, folds[f].train), folds[f].labels, num_classes);
      solve(t, grams.standardized(f, t.scaler.std, alpha_));
      out.push_back(predict_proba(features.index_select(0, folds[f].test)));
    }
    return out;
  }

 private:
  // The weights and bias for training system t, with `system` (float64 [d, d]; undefined for
  // least squares) standing for xc^T xc + alpha I in the factor.
  void solve(const TrainingSystem& t, const at::Tensor& system) {
    if (alpha_ > 0)
      weights_ = solve_refined(t.xc, t.xc.t().mm(t.yc), system);
    else  // least squares: no positive definite system to factor
      weights_ = std::get<0>(torch::linalg_lstsq(t.xc, t.yc));
    bias_ = (t.y_mean - t.x_mean.mm(weights_)).squeeze(0);
    scaler_ = t.scaler;
  }

  // W with (xc^T xc + alpha I) W = rhs, in float64 (see the header comment). The refinement
  // stops by LAPACK dsposv's test (dsposv refines a float32 factor the same way; here the factor
  // is float64, of the float32 Gram matrix): when the float64 residual is at most
  // |W| |A| eps sqrt(d), as small as a float64 factorization's own; it gives up after 30 rounds
  // or a round that does not lower the residual.
  at::Tensor solve_refined(const at::Tensor& xc, const at::Tensor& rhs, const at::Tensor& system) const {
    const double tolerance =
        largest_row_sum(system) * std::numeric_limits<double>::epsilon() * std::sqrt(static_cast<double>(xc.size(1)));
    const auto [lower, info] = torch::linalg_cholesky_ex(system);
    if (info.item<std::int64_t>() == 0) {
      const at::Tensor factor = lower.contiguous();
      at::Tensor w = substitute(factor, rhs);
      double last = std::numeric_limits<double>::infinity();
      for (int round = 0; round < 30; ++round) {
        const at::Tensor r = residual(xc, rhs, w);
        const double size = r.abs().max().item<double>();
        if (size <= tolerance * w.abs().max().item<double>()) return w;
        if (!(size < last)) break;  // not converging: float32's rounding matters here
        last = size;
        w += substitute(factor, r);
      }
    }
    at::Tensor exact = xc.t().mm(xc);
    exact.diagonal().add_(alpha_);
    return torch::cholesky_solve(rhs, torch::linalg_cholesky(exact));
  }

  // x with L L^T x = b, for the row-major lower factor L [d, d] and b [d, k]: forward, then
  // backward substitution, each along rows of L (LibTorch's cholesky_solve copied the factor
  // each call, which cost more than the refinement's pass over the rows).
  static at::Tensor substitute(const at::Tensor& factor, const at::Tensor& b) {
    const std::int64_t d = factor.size(0), k = b.size(1);
    const double* L = factor.data_ptr<double>();
    at::Tensor xt = b.t().clone(at::MemoryFormat::Contiguous);  // [k, d], never a view of b (k = 1)
    for (std::int64_t c = 0; c < k; ++c) {
      double* y = xt.data_ptr<double>() + c * d;
      for (std::int64_t i = 0; i < d; ++i)
        y[i] = (y[i] - kgain::dot_rows(L + i * d, y, static_cast<std::size_t>(i))) / L[i * d + i];
      for (std::int64_t i = d - 1; i >= 0; --i) {
        const double yi = y[i] /= L[i * d + i];  // held apart, so that the loop below vectorizes
        const double* row = L + i * d;
        for (std::int64_t j = 0; j < i; ++j) y[j] -= row[j] * yi;
      }
    }
    return xt.t().contiguous();
  }

  // max_i sum_j |a_ij|
  static double largest_row_sum(const at::Tensor& a) {
    const std::int64_t d = a.size(0);
    const double* p = a.data_ptr<double>();
    double largest = 0;
    for (std::int64_t i = 0; i < d; ++i) {
      double row = 0;
      for (std::int64_t j = 0; j < d; ++j) row += std::abs(p[i * d + j]);
      largest = std::max(largest, row);
    }
    return largest;
  }

  // rhs - xc^T (xc w) - alpha w in float64, in one pass over the rows of xc (float64 [n, d]; w
  // and rhs [d, k]): each row's k products with w, then its share of xc^T, while it is in cache.
  at::Tensor residual(const at::Tensor& xc, const at::Tensor& rhs, const at::Tensor& w) const {
    const std::int64_t n = xc.size(0), d = xc.size(1), k = w.size(1);
    const at::Tensor wt = w.t().contiguous();
    at::Tensor out = (rhs - alpha_ * w).t().contiguous();  // [k, d]
    const double* x = xc.data_ptr<double>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t c = 0; c < k; ++c) {
        const double t = kgain::dot_rows(x + i * d, wt.data_ptr<double>() + c * d, static_cast<std::size_t>(d));
        double* o = out.data_ptr<double>() + c * d;
        for (std::int64_t l = 0; l < d; ++l) o[l] -= t * x[i * d + l];
      }
    return out.t().contiguous();
  }

  double alpha_;
  kgain::Standardizer scaler_;
  at::Tensor weights_, bias_;
};

}  // namespace

KGAIN_LIBRARY("ridge",
              kgain::make_plugin<RidgeProbe>("ridge", "1.2.0", "ridge regression on one-vs-rest targets, closed form"))
