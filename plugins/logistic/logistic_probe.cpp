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
// With `C_grid`, C is chosen per fit by stratified inner cross-validation on the training
// images only (`inner_folds` folds, shuffled by the probe's seed; best mean accuracy, the
// smallest C on ties), then the model is refitted on all training images with that C.
//
// Options:
//   C         (number, default 1.0)   inverse L2 strength, > 0 (ignored when C_grid is given)
//   C_grid    (array of numbers)      candidate Cs for inner cross-validation
//   inner_folds (integer, default 3)  folds of the inner cross-validation, >= 2
//   max_iter  (integer, default 500)  L-BFGS iterations, > 0
//   tol       (number, default 1e-6)  stop when the largest gradient entry falls below it
#include <algorithm>
#include <random>

#include <torch/torch.h>

#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/standardize.hpp>

namespace {

struct LinearModel {
  at::Tensor weights, bias;  // [d, columns], [columns]; columns = 1 for two classes
};

at::Tensor logits(const at::Tensor& xs, const LinearModel& m) {
  at::Tensor z = torch::addmm(m.bias, xs, m.weights);
  return m.weights.size(1) == 1 ? torch::cat({torch::zeros_like(z), z}, 1) : z;
}

// Stratified assignment of the training images to `k` inner folds, shuffled by `seed`.
std::vector<std::int64_t> inner_folds(const at::Tensor& labels, std::int64_t num_classes, std::int64_t k, std::uint64_t seed) {
  std::vector<std::int64_t> fold(labels.size(0));
  std::mt19937_64 rng(seed);
  std::int64_t next = 0;
  for (std::int64_t c = 0; c < num_classes; ++c) {
    std::vector<std::int64_t> members;
    for (std::int64_t i = 0; i < labels.size(0); ++i)
      if (labels[i].item<std::int64_t>() == c) members.push_back(i);
    for (std::size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[rng() % i]);
    for (auto i : members) fold[i] = next++ % k;
  }
  return fold;
}

class LogisticProbe : public kgain::Probe {
 public:
  explicit LogisticProbe(const kgain::Options& options)
      : C_(options.get_double("C", 1.0)),
        C_grid_(options.get_double_list("C_grid", {})),
        inner_folds_(options.get_int("inner_folds", 3)),
        max_iter_(options.get_int("max_iter", 500)),
        tol_(options.get_double("tol", 1e-6)) {
    if (!(C_ > 0)) throw options.error("C", "must be positive (received " + std::to_string(C_) + ")");
    for (double c : C_grid_)
      if (!(c > 0)) throw options.error("C_grid", "every C must be positive (received " + std::to_string(c) + ")");
    if (inner_folds_ < 2) throw options.error("inner_folds", "must be at least 2 (received " + std::to_string(inner_folds_) + ")");
    if (max_iter_ <= 0) throw options.error("max_iter", "must be positive (received " + std::to_string(max_iter_) + ")");
    if (!(tol_ > 0)) throw options.error("tol", "must be positive (received " + std::to_string(tol_) + ")");
  }

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t seed) override {
    TORCH_CHECK(features.dim() == 2 && features.size(0) == labels.size(0), "logistic: features [n, d] and labels [n] expected");
    const at::Tensor y = labels.to(torch::kInt64);
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
    double best_C = grid.front(), best_accuracy = -1;
    for (double C : grid) {
      double accuracy = 0;
      for (std::int64_t f = 0; f < inner_folds_; ++f) {
        std::vector<std::int64_t> train, test;
        for (std::size_t i = 0; i < fold.size(); ++i) (fold[i] == f ? test : train).push_back(static_cast<std::int64_t>(i));
        const at::Tensor tr = torch::tensor(train), te = torch::tensor(test);
        kgain::Standardizer inner;
        inner.fit(features.index_select(0, tr));
        const LinearModel m = train_model(inner.apply(features.index_select(0, tr)), y.index_select(0, tr), num_classes, C);
        torch::NoGradGuard no_grad;
        const at::Tensor predicted = logits(inner.apply(features.index_select(0, te)), m).argmax(1);
        accuracy += predicted.eq(y.index_select(0, te)).to(torch::kDouble).mean().item<double>() / static_cast<double>(inner_folds_);
      }
      if (accuracy > best_accuracy + 1e-12) best_accuracy = accuracy, best_C = C;
    }
    return best_C;
  }

  LinearModel train_model(const at::Tensor& xs, const at::Tensor& y, std::int64_t num_classes, double C) const {
    const double n = static_cast<double>(xs.size(0));
    // Two classes: one logit column; class 0's logit is fixed at 0 (see logits()).
    const std::int64_t columns = num_classes == 2 ? 1 : num_classes;
    LinearModel m{torch::zeros({xs.size(1), columns}, torch::kFloat64).requires_grad_(true),
                  torch::zeros({columns}, torch::kFloat64).requires_grad_(true)};
    torch::optim::LBFGS optimizer({m.weights, m.bias}, torch::optim::LBFGSOptions(1.0)
                                                          .max_iter(max_iter_)
                                                          .max_eval(max_iter_ * 5 / 4)
                                                          .tolerance_grad(tol_)
                                                          .tolerance_change(1e-12)
                                                          .history_size(20)
                                                          .line_search_fn("strong_wolfe"));
    const double l2 = 1.0 / (2.0 * C * n);
    auto closure = [&] {
      optimizer.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(logits(xs, m), y) + l2 * m.weights.pow(2).sum();
      loss.backward();
      return loss;
    };
    optimizer.step(closure);
    return LinearModel{m.weights.detach(), m.bias.detach()};
  }

  double C_;
  std::vector<double> C_grid_;
  std::int64_t inner_folds_;
  std::int64_t max_iter_;
  double tol_;
  double chosen_C_ = 0;
  kgain::Standardizer scaler_;
  LinearModel model_;
};

}  // namespace

KGAIN_LIBRARY("logistic", kgain::make_plugin<LogisticProbe>("logistic", "1.0.0",
                                                            "multinomial L2 logistic regression (L-BFGS), scikit-learn's objective"))
