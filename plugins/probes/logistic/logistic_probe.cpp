// Probe `logistic`: multinomial logistic regression with an L2 penalty, fitted by L-BFGS or Newton.
//
// It minimises scikit-learn's objective for LogisticRegression(penalty="l2", C=C) in
// scikit-learn's own scale, and stops by scikit-learn's rule (scipy's L-BFGS-B: largest gradient
// entry <= tol, or a relative decrease of at most 2.2e-9; kgain/numeric/lbfgs.hpp), so that the same C
// and tol mean the same model and the same stopping point:
//     sum_i log_loss(x_i, y_i) + ||W||^2 / (2 C)       (the intercept is not penalised)
// As in scikit-learn, two classes get one weight vector (a sigmoid on the logit of class 1), more
// get the multinomial (softmax) model: a two-column softmax would be penalised half as much.
// Features are standardised with the training fold's mean and standard deviation (a constant
// feature gets standard deviation 1). Computation is in float64, from zero weights, with the
// gradient written by hand (two matrix products per evaluation, no autograd): the problem is
// convex, so the result does not depend on a seed.
//
// With `C_grid`, C is chosen per fit by stratified inner cross-validation on the training
// images only (`inner_folds` folds, shuffled by the probe's seed; best mean accuracy, the
// smallest C on ties), then the model is refitted on all training images with that C, from zero
// weights. Along the grid, each inner fold's fit starts from its solution for the previous C
// (warm start; the grid is visited from the smallest C up).
//
// Solver: Newton's method (newton.hpp) where its cost model says it is cheaper (narrow taps with
// three or more classes), L-BFGS otherwise, started from the inverse of the objective's
// curvature as one Gram matrix (curvature_preconditioner.hpp: the Hessian itself for two
// classes; formed again as the fit moves); both stop by the same rule on the same gradient. A
// Newton phase that cannot go on (a step that does not lower the objective, a Hessian that does
// not factor) is finished by L-BFGS from where it stopped.
//
// Options: `declared_options` below (`kgain list --options logistic`).
#include <algorithm>
#include <optional>
#include <random>

#include <torch/torch.h>

#include <kgain/numeric/dense_kernels.hpp>
#include <kgain/numeric/lbfgs.hpp>
#include <kgain/numeric/linear_problem.hpp>
#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/numeric/standardize.hpp>

#include "curvature_preconditioner.hpp"
#include "logistic_objective.hpp"
#include "newton.hpp"

namespace {

struct LinearModel {
  at::Tensor weights, bias;  // [d, columns], [columns]; columns = 1 for two classes
};

using kgain_logistic::LogisticObjective;

// The fitted model as the [d, columns] weights and [columns] bias that logits() takes.
LinearModel model_of(const LogisticObjective& objective, const std::vector<double>& theta) {
  auto [weights, bias] = objective.problem().weights_and_bias(theta);
  return {weights, bias};
}

at::Tensor logits(const at::Tensor& xs, const LinearModel& m) {
  at::Tensor z = torch::addmm(m.bias, xs, m.weights);
  return m.weights.size(1) == 1 ? torch::cat({torch::zeros_like(z), z}, 1) : z;
}

// Stratified assignment of the training images to `k` inner folds, shuffled by `seed`.
std::vector<std::int64_t> inner_folds(const at::Tensor& labels, std::int64_t num_classes, std::int64_t k,
                                      std::uint64_t seed) {
  std::vector<std::int64_t> fold(labels.size(0));
  std::mt19937_64 rng(seed);
  std::int64_t next = 0;
  const auto* y = labels.data_ptr<std::int64_t>();
  for (std::int64_t c = 0; c < num_classes; ++c) {
    std::vector<std::int64_t> members;
    for (std::int64_t i = 0; i < labels.size(0); ++i)
      if (y[i] == c) members.push_back(i);
    for (std::size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng() % i]);
    for (auto i : members) fold[i] = next++ % k;
  }
  return fold;
}

class LogisticProbe : public kgain::Probe {
 public:
  static constexpr std::array declared_options{
      kgain::option::number("C", "1.0", "inverse L2 strength, scikit-learn's C (ignored when C_grid is given)")
          .positive(),
      kgain::option::numbers("C_grid", "[]",
                             "candidate Cs, chosen per fit by inner cross-validation on the training images (best "
                             "mean accuracy, the smallest C on ties); [] = C")
          .positive(),
      kgain::option::integer("inner_folds", "3", "folds of that inner cross-validation").at_least(2),
      kgain::option::integer("max_iter", "1000",
                             "solver iterations (scikit-learn's max_iter; Newton's and L-BFGS's together)")
          .positive(),
      kgain::option::number("tol", "1e-4",
                            "scikit-learn's tol: stop when the largest gradient entry of the objective (the log "
                            "losses' sum plus W's squared norm / 2C) is at most tol (or the value stops falling: "
                            "scipy's rule)")
          .positive(),
      kgain::option::string("solver", "\"auto\"",
                            "`auto`: Newton's method where its cost model says it is cheaper (narrow taps with "
                            "three or more classes), L-BFGS otherwise; the same objective and stopping rule either "
                            "way (a failed Newton step hands over to L-BFGS)")
          .one_of("auto|newton|lbfgs"),
      kgain::option::string("preconditioner", "\"curvature\"",
                            "`curvature`: L-BFGS starts from the inverse of the objective's curvature as one Gram "
                            "matrix (the Hessian itself for two classes), formed again as the fit moves; `none`: "
                            "from a multiple of the identity, as scikit-learn's. Same stopping rule either way")
          .one_of("curvature|none"),
  };

  explicit LogisticProbe(const kgain::Options& options)
      : C_(options.get_double("C")),
        C_grid_(options.get_double_list("C_grid")),
        inner_folds_(options.get_int("inner_folds")),
        max_iter_(options.get_int("max_iter")),
        tol_(options.get_double("tol")),
        solver_(options.get_string("solver")),
        preconditioner_(options.get_string("preconditioner")) {}

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes,
           std::uint64_t seed) override {
    TORCH_CHECK(features.dim() == 2 && features.size(0) == labels.size(0),
                "logistic: features [n, d] and labels [n] expected");
    const at::Tensor y = labels.to(torch::kInt64).contiguous();
    chosen_C_ = C_grid_.empty() ? C_ : select_C(features, y, num_classes, seed);
    scaler_.fit(features);
    model_ = train_model(scaler_.apply(features), y, num_classes, chosen_C_);
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(model_.weights.defined(), "logistic: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    return torch::softmax(logits(scaler_.apply(features), model_), 1);
  }

 private:
  // The C of the grid with the best mean accuracy over inner folds of the training images
  // (the smallest such C on ties: the most regularised model).
  double select_C(const at::Tensor& features, const at::Tensor& y, std::int64_t num_classes, std::uint64_t seed) const {
    const auto fold = inner_folds(y, num_classes, inner_folds_, seed);
    std::vector<double> grid = C_grid_;
    std::sort(grid.begin(), grid.end());
    struct InnerFold {
      kgain::LinearProblem train;  // standardized once, for every C
      at::Tensor test_x, test_y;
      std::vector<double> theta;
    };
    std::vector<InnerFold> inner;
    for (std::int64_t f = 0; f < inner_folds_; ++f) {
      std::vector<std::int64_t> train, test;
      for (std::size_t i = 0; i < fold.size(); ++i)
        (fold[i] == f ? test : train).push_back(static_cast<std::int64_t>(i));
      const at::Tensor tr = torch::tensor(train), te = torch::tensor(test);
      kgain::Standardizer scaler;
      scaler.fit(features.index_select(0, tr));
      inner.push_back(
          {kgain::LinearProblem(scaler.apply(features.index_select(0, tr)), y.index_select(0, tr), num_classes),
           scaler.apply(features.index_select(0, te)),
           y.index_select(0, te),
           {}});
    }
    double best_C = grid.front(), best_accuracy = -1;
    for (double C : grid) {
      double accuracy = 0;
      for (auto& f : inner) {
        const LogisticObjective objective(f.train, C);
        if (f.theta.empty()) f.theta.assign(static_cast<std::size_t>(objective.parameters()), 0.0);
        minimize(objective, f.theta);  // warm start: from this fold's solution for the previous C
        const at::Tensor predicted = logits(f.test_x, model_of(objective, f.theta)).argmax(1);
        accuracy += predicted.eq(f.test_y).to(torch::kDouble).mean().item<double>() / static_cast<double>(inner_folds_);
      }
      if (accuracy > best_accuracy + 1e-12) best_accuracy = accuracy, best_C = C;
    }
    return best_C;
  }

  LinearModel train_model(const at::Tensor& xs, const at::Tensor& y, std::int64_t num_classes, double C) const {
    const kgain::LinearProblem problem(xs, y, num_classes);
    const LogisticObjective objective(problem, C);
    std::vector<double> theta(static_cast<std::size_t>(objective.parameters()), 0.0);
    minimize(objective, theta);
    return model_of(objective, theta);
  }

  void minimize(const LogisticObjective& objective, std::vector<double>& theta) const {
    const kgain::LinearProblem& p = objective.problem();
    std::int64_t newton_iterations = 0;
    if (solver_ == "newton" ||
        (solver_ == "auto" && kgain_logistic::newton_is_cheaper(p.n, p.d, p.columns, preconditioner_ == "curvature"))) {
      const auto outcome = kgain_logistic::minimize_newton(p, objective.C(), objective, theta, tol_, max_iter_);
      if (outcome.converged || outcome.iterations >= max_iter_) return;
      newton_iterations = outcome.iterations;
    }
    kgain::LbfgsSettings settings;
    settings.gradient_tolerance = tol_;
    settings.max_iterations = max_iter_ - newton_iterations;
    std::optional<kgain_logistic::CurvaturePreconditioner> curvature;
    if (preconditioner_ == "curvature") curvature.emplace(p, objective.C()).attach(theta.data(), settings);
    kgain::minimize_lbfgs([&](const double* x, double* g) { return objective(x, g); }, theta, settings);
  }

  double C_;
  std::vector<double> C_grid_;
  std::int64_t inner_folds_;
  std::int64_t max_iter_;
  double tol_;
  std::string solver_;
  std::string preconditioner_;
  double chosen_C_ = 0;
  kgain::Standardizer scaler_;
  LinearModel model_;
};

}  // namespace

KGAIN_LIBRARY("logistic", kgain::make_plugin<LogisticProbe>(
                              "logistic", "2.1.0",
                              "multinomial L2 logistic regression (L-BFGS or Newton), scikit-learn's objective"))
