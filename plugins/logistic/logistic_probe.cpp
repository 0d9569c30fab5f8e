// Probe `logistic`: multinomial logistic regression with an L2 penalty, fitted by L-BFGS.
//
// It minimises scikit-learn's objective for LogisticRegression(penalty="l2", C=C), so the same
// C means the same model:
//     C * sum_i log_loss(x_i, y_i) + 0.5 * ||W||^2       (the intercept is not penalised)
// divided here by C * n so that the tolerance does not depend on the number of images. As in
// scikit-learn, two classes get one weight vector (a sigmoid on the logit of class 1), more
// get the multinomial (softmax) model: a two-column softmax would be penalised half as much.
// Features are standardised with the training fold's mean and standard deviation (a constant
// feature gets standard deviation 1). Computation is in float64, from zero weights: the problem
// is convex, so the result does not depend on a seed.
//
// Options:
//   C         (number, default 1.0)   inverse L2 strength, > 0
//   max_iter  (integer, default 500)  L-BFGS iterations, > 0
//   tol       (number, default 1e-6)  stop when the largest gradient entry falls below it
#include <torch/torch.h>

#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/standardize.hpp>

namespace {

class LogisticProbe : public kgain::Probe {
 public:
  explicit LogisticProbe(const kgain::Options& options)
      : C_(options.get_double("C", 1.0)), max_iter_(options.get_int("max_iter", 500)), tol_(options.get_double("tol", 1e-6)) {
    if (!(C_ > 0)) throw options.error("C", "must be positive (received " + std::to_string(C_) + ")");
    if (max_iter_ <= 0) throw options.error("max_iter", "must be positive (received " + std::to_string(max_iter_) + ")");
    if (!(tol_ > 0)) throw options.error("tol", "must be positive (received " + std::to_string(tol_) + ")");
  }

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    TORCH_CHECK(features.dim() == 2 && features.size(0) == labels.size(0), "logistic: features [n, d] and labels [n] expected");
    scaler_.fit(features);
    const auto xs = scaler_.apply(features);
    const auto y = labels.to(torch::kInt64);
    const double n = static_cast<double>(xs.size(0));

    // Two classes: one logit column; class 0's logit is fixed at 0 (see logits()).
    const std::int64_t columns = num_classes == 2 ? 1 : num_classes;
    auto weights = torch::zeros({xs.size(1), columns}, torch::kFloat64).requires_grad_(true);
    auto bias = torch::zeros({columns}, torch::kFloat64).requires_grad_(true);
    torch::optim::LBFGS optimizer({weights, bias}, torch::optim::LBFGSOptions(1.0)
                                                        .max_iter(max_iter_)
                                                        .max_eval(max_iter_ * 5 / 4)
                                                        .tolerance_grad(tol_)
                                                        .tolerance_change(1e-12)
                                                        .history_size(20)
                                                        .line_search_fn("strong_wolfe"));
    const double l2 = 1.0 / (2.0 * C_ * n);
    auto closure = [&] {
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(logits(xs, weights, bias), y) + l2 * weights.pow(2).sum();
      loss.backward();
      return loss;
    };
    optimizer.step(closure);
    weights_ = weights.detach();
    bias_ = bias.detach();
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(weights_.defined(), "logistic: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    const auto xs = scaler_.apply(features);
    return torch::softmax(logits(xs, weights_, bias_), 1);
  }

 private:
  static at::Tensor logits(const at::Tensor& xs, const at::Tensor& weights, const at::Tensor& bias) {
    at::Tensor z = torch::addmm(bias, xs, weights);
    return weights.size(1) == 1 ? torch::cat({torch::zeros_like(z), z}, 1) : z;
  }

  double C_;
  std::int64_t max_iter_;
  double tol_;
  kgain::Standardizer scaler_;
  at::Tensor weights_, bias_;
};

}  // namespace

KGAIN_LIBRARY("logistic", kgain::make_plugin<LogisticProbe>("logistic", "1.0.0",
                                                            "multinomial L2 logistic regression (L-BFGS), scikit-learn's objective"))
