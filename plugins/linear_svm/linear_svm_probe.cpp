// Probe `linear_svm`: linear support vector machine, one-vs-rest, squared hinge loss, L2.
//
// The objective of scikit-learn's LinearSVC (liblinear, fit_intercept=True, intercept_scaling=1),
// so the same C gives the same model; per class k, with y_ik = +1 for class k and -1 otherwise:
//     0.5 * (||w_k||^2 + b_k^2) + C * sum_i max(0, 1 - y_ik (w_k . x_i + b_k))^2
// (liblinear penalises the intercept too, as a weight on a constant feature). Two classes get
// one classifier, for class 1, as in scikit-learn. The loss is smooth, so L-BFGS minimises it
// exactly; features are standardized on the training fold first.
//
// Scores: an SVM gives margins, not probabilities. predict_proba returns the softmax of the
// margins (for two classes the sigmoid of the one margin): the top class and every ranking are
// the margins', so accuracy and ROC-AUC are exact; log-loss on these scores is not calibrated.
//
// Options: C (number, default 1.0, > 0), max_iter (integer, default 1000), tol (number, 1e-6).
#include <torch/torch.h>

#include <kgain/margin_scores.hpp>
#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/standardize.hpp>

namespace {

class LinearSvmProbe : public kgain::Probe {
 public:
  explicit LinearSvmProbe(const kgain::Options& options)
      : C_(options.get_double("C", 1.0)), max_iter_(options.get_int("max_iter", 1000)), tol_(options.get_double("tol", 1e-6)) {
    if (!(C_ > 0)) throw options.error("C", "must be positive (received " + std::to_string(C_) + ")");
    if (max_iter_ <= 0) throw options.error("max_iter", "must be positive (received " + std::to_string(max_iter_) + ")");
    if (!(tol_ > 0)) throw options.error("tol", "must be positive (received " + std::to_string(tol_) + ")");
  }

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    scaler_.fit(features);
    const at::Tensor xs = scaler_.apply(features);
    const std::int64_t columns = num_classes == 2 ? 1 : num_classes;
    const at::Tensor y = labels.to(torch::kLong);
    // Targets +1 / -1 per one-vs-rest column.
    at::Tensor targets = num_classes == 2 ? (y == 1).to(torch::kFloat64).unsqueeze(1)
                                          : torch::one_hot(y, num_classes).to(torch::kFloat64);
    targets = targets * 2 - 1;
    const double n = static_cast<double>(xs.size(0));
    auto weights = torch::zeros({xs.size(1), columns}, torch::kFloat64).requires_grad_(true);
    auto bias = torch::zeros({columns}, torch::kFloat64).requires_grad_(true);
    torch::optim::LBFGS optimizer({weights, bias}, torch::optim::LBFGSOptions(1.0)
                                                        .max_iter(max_iter_)
                                                        .max_eval(max_iter_ * 5 / 4)
                                                        .tolerance_grad(tol_)
                                                        .tolerance_change(1e-14)
                                                        .history_size(20)
                                                        .line_search_fn("strong_wolfe"));
    // Divided by C * n, like the logistic probe, so that tol does not depend on n.
    auto closure = [&] {
      optimizer.zero_grad();
      const auto margin = torch::clamp_min(1 - targets * torch::addmm(bias, xs, weights), 0);
      auto loss = margin.pow(2).sum() / n + (weights.pow(2).sum() + bias.pow(2).sum()) / (2 * C_ * n);
      loss.backward();
      return loss;
    };
    optimizer.step(closure);
    weights_ = weights.detach();
    bias_ = bias.detach();
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(weights_.defined(), "linear_svm: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    return kgain::scores_from_margins(torch::addmm(bias_, scaler_.apply(features), weights_));
  }

 private:
  double C_;
  std::int64_t max_iter_;
  double tol_;
  kgain::Standardizer scaler_;
  at::Tensor weights_, bias_;
};

}  // namespace

KGAIN_LIBRARY("linear_svm", kgain::make_plugin<LinearSvmProbe>("linear_svm", "1.0.0",
                                                               "one-vs-rest linear SVM, squared hinge, L2 (LinearSVC's objective)"))
