// Probe `linear_svm`: linear support vector machine, one-vs-rest, squared hinge loss, L2.
//
// The objective of scikit-learn's LinearSVC (liblinear, fit_intercept=True, intercept_scaling=1),
// so the same C gives the same model; per class k, with y_ik = +1 for class k and -1 otherwise:
//     0.5 * (||w_k||^2 + b_k^2) + C * sum_i max(0, 1 - y_ik (w_k . x_i + b_k))^2
// (liblinear penalises the intercept too, as a weight on a constant feature). Two classes get
// one classifier, for class 1, as in scikit-learn. The loss is smooth, so L-BFGS minimises it
// exactly (kgain/numeric/lbfgs.hpp; the objective divided by C n, stopped when the largest gradient entry
// is at most tol); features are standardized on the training fold first.
//
// Scores: an SVM gives margins, not probabilities. predict_proba returns the softmax of the
// margins (for two classes the sigmoid of the one margin): the top class and every ranking are
// the margins', so accuracy and ROC-AUC are exact; log-loss on these scores is not calibrated.
//
// Options: `declared_options` below (`kgain list --options linear_svm`).
#include <algorithm>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include <kgain/numeric/dense_kernels.hpp>
#include <kgain/numeric/lbfgs.hpp>
#include <kgain/numeric/linear_problem.hpp>
#include <kgain/numeric/margin_scores.hpp>
#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/numeric/standardize.hpp>

namespace {

// sum_i sum_k max(0, 1 - y_ik (w_k . x_i + b_k))^2 / n + (||W||^2 + ||b||^2) / (2 C n): LinearSVC's
// objective divided by C n, so that tol does not depend on n, over the parameters of a
// LinearProblem (kgain/numeric/linear_problem.hpp); one pass over the rows per evaluation.
class SquaredHingeObjective {
 public:
  SquaredHingeObjective(const at::Tensor& xs, const at::Tensor& y, std::int64_t num_classes, double C)
      : problem_(xs, y, num_classes), C_(C) {}
  const kgain::LinearProblem& problem() const { return problem_; }

  double operator()(const double* theta, double* gradient) const {
    const auto d = static_cast<std::size_t>(problem_.d), k = static_cast<std::size_t>(problem_.columns);
    std::fill(gradient, gradient + (d + 1) * k, 0.0);
    const float* x = problem_.rows.data_ptr<float>();
    const std::int64_t* y = problem_.labels.data_ptr<std::int64_t>();
    const double n = static_cast<double>(problem_.n);
    double loss = 0;
    for (std::int64_t i = 0; i < problem_.n; ++i, x += d)
      for (std::size_t c = 0; c < k; ++c) {
        // One-vs-rest target: +1 for the class (class 1 when there are two), -1 otherwise.
        const double target = y[i] == (k == 1 ? 1 : static_cast<std::int64_t>(c)) ? 1.0 : -1.0;
        const double margin = 1 - target * (theta[d * k + c] + kgain::dot(x, theta + c * d, d));
        if (margin <= 0) continue;
        loss += margin * margin;
        const double slope = -2 * target * margin / n;
        kgain::axpy(slope, x, gradient + c * d, d);
        gradient[d * k + c] += slope;
      }
    double squared_norm = 0;
    for (std::size_t j = 0; j < (d + 1) * k; ++j)
      squared_norm += theta[j] * theta[j], gradient[j] += theta[j] / (C_ * n);
    return loss / n + squared_norm / (2 * C_ * n);
  }

 private:
  kgain::LinearProblem problem_;
  double C_;
};

class LinearSvmProbe : public kgain::Probe {
 public:
  static constexpr std::array declared_options{
      kgain::option::number("C", "1.0", "LinearSVC's C").positive(),
      kgain::option::integer("max_iter", "1000", "L-BFGS iterations").positive(),
      kgain::option::number("tol", "1e-6", "L-BFGS gradient tolerance (of the objective divided by C n)").positive(),
  };

  explicit LinearSvmProbe(const kgain::Options& options)
      : C_(options.get_double("C")), max_iter_(options.get_int("max_iter")), tol_(options.get_double("tol")) {}

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    scaler_.fit(features);
    const SquaredHingeObjective objective(scaler_.apply(features), labels, num_classes, C_);
    std::vector<double> theta(static_cast<std::size_t>(objective.problem().parameters()), 0.0);
    kgain::LbfgsSettings settings;
    settings.gradient_tolerance = tol_;
    settings.max_iterations = max_iter_;
    settings.relative_decrease = 0;  // stop on the gradient, or when a step no longer lowers the value
    kgain::minimize_lbfgs([&](const double* x, double* g) { return objective(x, g); }, theta, settings);
    std::tie(weights_, bias_) = objective.problem().weights_and_bias(theta);
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

KGAIN_LIBRARY("linear_svm",
              kgain::make_plugin<LinearSvmProbe>("linear_svm", "1.0.0",
                                                 "one-vs-rest linear SVM, squared hinge, L2 (LinearSVC's objective)"))
