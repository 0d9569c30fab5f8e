// accuracy, balanced_accuracy and macro_f1, with scikit-learn's definitions.
//
// scikit-learn's conventions that matter on small test folds:
//  - balanced_accuracy averages recall over the classes present in y_true only;
//  - macro_f1 averages F1 over the union of classes in y_true and y_pred (a class in neither
//    does not count); a class with zero precision and recall scores 0, as scikit-learn's
//    default zero_division does.
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

}  // namespace

KGAIN_LIBRARY("classification_metrics",
              kgain::make_plugin<Accuracy>("accuracy", "1.0.0", "share of images whose top class is right"),
              kgain::make_plugin<BalancedAccuracy>("balanced_accuracy", "1.0.0",
                                                   "mean recall over the classes present in the test fold"),
              kgain::make_plugin<MacroF1>("macro_f1", "1.0.0", "unweighted mean of per-class F1"))
