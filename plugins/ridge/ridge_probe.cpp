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
// is computed in float64 from the float64 rows (two thin products) and solved again with the
// same factor, until the residual is as small as a float64 solve's. That converges when the
// system's condition number times float32's rounding (6e-8) is below one; when it does not,
// the Gram matrix is formed again in float64 and solved as before. Either way W is a float64
// solution. Scores: the softmax of the decision values (sigmoid for two classes); rankings
// and the top class are the decision values', log-loss on them is not calibrated.
//
// Options: alpha (number, default 1.0, >= 0).
#include <cmath>
#include <limits>

#include <torch/torch.h>

#include <kgain/gram.hpp>
#include <kgain/margin_scores.hpp>
#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/standardize.hpp>

namespace {

class RidgeProbe : public kgain::Probe {
 public:
  explicit RidgeProbe(const kgain::Options& options) : alpha_(options.get_double("alpha", 1.0)) {
    if (!(alpha_ >= 0))
      throw options.error("alpha", "must be zero or positive (received " + std::to_string(alpha_) + ")");
  }

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    torch::NoGradGuard no_grad;
    // One float64 copy of the training features, standardized and then centred in place: at
    // 24,000 x 1,280 each copy is 245 MB (docs/performance.md, "Scale").
    at::Tensor x = features.to(torch::kFloat64);
    scaler_.fit(x);
    scaler_.apply_in_place(x);
    const at::Tensor y = labels.to(torch::kLong);
    at::Tensor targets = num_classes == 2 ? (y == 1).to(torch::kFloat64).unsqueeze(1)
                                          : torch::one_hot(y, num_classes).to(torch::kFloat64);
    targets = targets * 2 - 1;
    const at::Tensor x_mean = x.mean(0, true), y_mean = targets.mean(0, true);
    const at::Tensor& xc = x.sub_(x_mean);
    const at::Tensor yc = targets - y_mean;
    if (alpha_ > 0)
      weights_ = solve_refined(xc, xc.t().mm(yc));
    else  // least squares: no positive definite system to factor
      weights_ = std::get<0>(torch::linalg_lstsq(xc, yc));
    bias_ = (y_mean - x_mean.mm(weights_)).squeeze(0);
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(weights_.defined(), "ridge: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    return kgain::scores_from_margins(torch::addmm(bias_, scaler_.apply(features), weights_));
  }

 private:
  // W with (xc^T xc + alpha I) W = rhs, in float64 (see the header comment). The refinement
  // stops by LAPACK dsposv's test (dsposv refines a float32 factor the same way; here the factor
  // is float64, of the float32 Gram matrix): when the float64 residual is at most
  // |W| |A| eps sqrt(d), as small as a float64 factorization's own; it gives up after 30 rounds
  // or a round that does not lower the residual.
  at::Tensor solve_refined(const at::Tensor& xc, const at::Tensor& rhs) const {
    const at::Tensor identity = alpha_ * torch::eye(xc.size(1), torch::kFloat64);
    const at::Tensor x32 = xc.to(torch::kFloat);
    const at::Tensor system = kgain::gram(x32).to(torch::kFloat64) + identity;
    const double tolerance = system.abs().sum(1).max().item<double>() * std::numeric_limits<double>::epsilon() *
                             std::sqrt(static_cast<double>(xc.size(1)));
    const auto [factor, info] = torch::linalg_cholesky_ex(system);
    if (info.item<std::int64_t>() == 0) {
      at::Tensor w = torch::cholesky_solve(rhs, factor);
      double last = std::numeric_limits<double>::infinity();
      for (int round = 0; round < 30; ++round) {
        const at::Tensor residual = rhs - xc.t().mm(xc.mm(w)) - alpha_ * w;
        const double size = residual.abs().max().item<double>();
        if (size <= tolerance * w.abs().max().item<double>()) return w;
        if (!(size < last)) break;  // not converging: float32's rounding matters here
        last = size;
        w += torch::cholesky_solve(residual, factor);
      }
    }
    return torch::cholesky_solve(rhs, torch::linalg_cholesky(xc.t().mm(xc) + identity));
  }

  double alpha_;
  kgain::Standardizer scaler_;
  at::Tensor weights_, bias_;
};

}  // namespace

KGAIN_LIBRARY("ridge",
              kgain::make_plugin<RidgeProbe>("ridge", "1.1.0", "ridge regression on one-vs-rest targets, closed form"))
