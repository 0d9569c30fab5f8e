// accuracy, balanced_accuracy, macro_f1, roc_auc and log_loss, with scikit-learn's definitions.
//
// scikit-learn's conventions that matter on small test folds:
//  - balanced_accuracy averages recall over the classes present in y_true only;
//  - macro_f1 averages F1 over the union of classes in y_true and y_pred (a class in neither
//    does not count); a class with zero precision and recall scores 0, as scikit-learn's
//    default zero_division does.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include <kgain/metric.hpp>
#include <kgain/plugin.hpp>

namespace {

// counts[t][p]: images of true class t predicted as p.
std::vector<std::vector<std::int64_t>> confusion(const kgain::Predictions& p) {
  std::vector<std::vector<std::int64_t>> c(p.num_classes, std::vector<std::int64_t>(p.num_classes, 0));
  for (std::int64_t i = 0; i < p.size(); ++i) c[p.labels[i]][p.predicted(i)] += 1;
  return c;
}

class Accuracy : public kgain::Metric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit Accuracy(const kgain::Options&) {}
  double score(const kgain::Predictions& p) const override {
    if (p.size() == 0) return 0.0;
    std::int64_t correct = 0;
    for (std::int64_t i = 0; i < p.size(); ++i) correct += p.predicted(i) == p.labels[i];
    return static_cast<double>(correct) / static_cast<double>(p.size());
  }
};

class BalancedAccuracy : public kgain::Metric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit BalancedAccuracy(const kgain::Options&) {}
  double score(const kgain::Predictions& p) const override {
    const auto c = confusion(p);
    double sum = 0.0;
    int present = 0;
    for (std::int64_t t = 0; t < p.num_classes; ++t) {
      std::int64_t support = 0;
      for (auto n : c[t]) support += n;
      if (support == 0) continue;
      sum += static_cast<double>(c[t][t]) / static_cast<double>(support);
      ++present;
    }
    return present ? sum / present : 0.0;
  }
};

class MacroF1 : public kgain::Metric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit MacroF1(const kgain::Options&) {}
  double score(const kgain::Predictions& p) const override {
    const auto c = confusion(p);
    std::set<std::int64_t> labels;
    for (std::int64_t i = 0; i < p.size(); ++i) {
      labels.insert(p.labels[i]);
      labels.insert(p.predicted(i));
    }
    if (labels.empty()) return 0.0;
    double sum = 0.0;
    for (auto k : labels) {
      std::int64_t tp = c[k][k], predicted = 0, actual = 0;
      for (std::int64_t j = 0; j < p.num_classes; ++j) {
        predicted += c[j][k];
        actual += c[k][j];
      }
      // F1 = 2tp / (2tp + fp + fn) = 2tp / (predicted + actual); 0 when both are empty.
      if (predicted + actual > 0) sum += 2.0 * tp / static_cast<double>(predicted + actual);
    }
    return sum / static_cast<double>(labels.size());
  }
};

// Area under the ROC curve of `scores` for the positive images: the probability that a random
// positive outscores a random negative, ties counting one half (Mann-Whitney U). NaN when one
// side is empty.
double auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0, n_pos = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mid_rank =
        (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0 + 1.0;  // average rank of the tie block
    for (std::size_t k = i; k < j; ++k)
      if (positive[order[k]]) rank_sum += mid_rank, n_pos += 1;
    i = j;
  }
  const double n_neg = static_cast<double>(scores.size()) - n_pos;
  if (n_pos == 0 || n_neg == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg);
}

// roc_auc: binary, the AUC of class 1's score; more classes, the one-vs-rest AUC of each class
// averaged without weights (roc_auc_score(multi_class="ovr", average="macro")). A class with no
// positive or no negative image in the fold has no AUC and is left out of the average
// (scikit-learn raises an error there instead); NaN when no class has one.
class RocAuc : public kgain::Metric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit RocAuc(const kgain::Options&) {}
  double score(const kgain::Predictions& p) const override {
    const std::int64_t k = p.num_classes;
    std::vector<double> s(p.size());
    std::vector<bool> positive(p.size());
    const auto column = [&](std::int64_t c) {
      for (std::int64_t i = 0; i < p.size(); ++i) s[i] = p.scores[i * k + c], positive[i] = p.labels[i] == c;
      return auc(s, positive);
    };
    if (k == 2) return column(1);
    double sum = 0;
    int defined = 0;
    for (std::int64_t c = 0; c < k; ++c) {
      const double a = column(c);
      if (!std::isnan(a)) sum += a, ++defined;
    }
    return defined ? sum / defined : std::numeric_limits<double>::quiet_NaN();
  }
};

// log_loss: mean of -log p(true class), probabilities clipped to [eps, 1 - eps] with eps the
// float64 machine epsilon and rows renormalised, as scikit-learn 1.2's log_loss(eps="auto").
class LogLoss : public kgain::Metric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit LogLoss(const kgain::Options&) {}
  double score(const kgain::Predictions& p) const override {
    const double eps = std::numeric_limits<double>::epsilon();
    double total = 0;
    for (std::int64_t i = 0; i < p.size(); ++i) {
      double row = 0;
      for (std::int64_t c = 0; c < p.num_classes; ++c) row += std::clamp(p.scores[i * p.num_classes + c], eps, 1 - eps);
      total -= std::log(std::clamp(p.scores[i * p.num_classes + p.labels[i]], eps, 1 - eps) / row);
    }
    return p.size() ? total / static_cast<double>(p.size()) : 0.0;
  }
  bool higher_is_better() const override { return false; }
};

}  // namespace

KGAIN_LIBRARY("classification_metrics",
              kgain::make_plugin<Accuracy>("accuracy", "1.0.0", "share of images whose top class is right"),
              kgain::make_plugin<BalancedAccuracy>("balanced_accuracy", "1.0.0",
                                                   "mean recall over the classes present in the test fold"),
              kgain::make_plugin<MacroF1>("macro_f1", "1.0.0", "unweighted mean of per-class F1"),
              kgain::make_plugin<RocAuc>("roc_auc", "1.0.0", "ROC AUC; one-vs-rest macro average for more classes"),
              kgain::make_plugin<LogLoss>("log_loss", "1.0.0",
                                          "cross-entropy of the class probabilities (lower is better)"))
