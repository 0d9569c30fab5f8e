// Probe `ridge`: ridge regression on one-vs-rest targets, in closed form
// (scikit-learn's RidgeClassifier).
//
// Targets are +1 for the class and -1 otherwise (one column for two classes, for class 1).
// With X and the targets centred on the training fold (the intercept is not penalised):
//     W = (Xc^T Xc + alpha I)^-1 Xc^T Yc,   b = mean(Y) - mean(X) W
// solved by a Cholesky factorization in float64. Features are standardized on the training
// fold first. Scores: the softmax of the decision values (sigmoid for two classes); rankings
// and the top class are the decision values', log-loss on them is not calibrated.
//
// Options: alpha (number, default 1.0, >= 0).
#include <torch/torch.h>

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
    const at::Tensor gram = xc.t().mm(xc) + alpha_ * torch::eye(x.size(1), torch::kFloat64);
    // Cholesky when the system is positive definite (alpha > 0); least squares otherwise.
    if (alpha_ > 0)
      weights_ = torch::cholesky_solve(xc.t().mm(yc), torch::linalg_cholesky(gram));
    else
      weights_ = std::get<0>(torch::linalg_lstsq(xc, yc));
    bias_ = (y_mean - x_mean.mm(weights_)).squeeze(0);
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(weights_.defined(), "ridge: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    return kgain::scores_from_margins(torch::addmm(bias_, scaler_.apply(features), weights_));
  }

 private:
  double alpha_;
  kgain::Standardizer scaler_;
  at::Tensor weights_, bias_;
};

}  // namespace

KGAIN_LIBRARY("ridge",
              kgain::make_plugin<RidgeProbe>("ridge", "1.0.0", "ridge regression on one-vs-rest targets, closed form"))
