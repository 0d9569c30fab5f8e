// Metrics match scikit-learn on small inputs. Expected values were computed with
// scikit-learn 1.2.1 (python3-sklearn): see the comment on each case.
#include "test_support.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "plan/registry.hpp"
#include <kgain/metric.hpp>

using namespace kgain;
using namespace kgain::core;

namespace {
double score(const std::string& metric, const std::vector<std::int64_t>& y_true,
             const std::vector<std::int64_t>& y_pred, int k) {
  static Registry registry = [] {
    Registry r;
    r.add_directory(test::plugin_dir());
    return r;
  }();
  Predictions p;
  p.num_classes = k;
  p.labels = y_true;
  for (auto c : y_pred)
    for (int j = 0; j < k; ++j) p.scores.push_back(j == c ? 0.9 : 0.1 / (k - 1));
  return registry.create<Metric>(metric, Options("metrics." + metric, ""))->score(p);
}
}  // namespace

TEST_CASE("accuracy, balanced_accuracy and macro_f1 equal scikit-learn's", "[metrics]") {
  // y_true = [0,0,0,0,1,1,2,2,2,2], y_pred = [0,0,1,2,1,1,2,2,0,1]
  //   accuracy_score -> 0.6; balanced_accuracy_score -> (2/4 + 2/2 + 2/4)/3 = 0.6666666666666666
  //   f1_score(average="macro") -> 0.6031746031746033
  const std::vector<std::int64_t> y_true{0, 0, 0, 0, 1, 1, 2, 2, 2, 2}, y_pred{0, 0, 1, 2, 1, 1, 2, 2, 0, 1};
  CHECK(score("accuracy", y_true, y_pred, 3) == Approx(0.6).epsilon(1e-12));
  CHECK(score("balanced_accuracy", y_true, y_pred, 3) == Approx(2.0 / 3.0).epsilon(1e-12));
  CHECK(score("macro_f1", y_true, y_pred, 3) == Approx(0.6031746031746033).epsilon(1e-12));
}

TEST_CASE("Classes absent from a fold follow scikit-learn's conventions", "[metrics]") {
  // Class 2 exists (k = 3) but is neither true nor predicted: scikit-learn ignores it.
  // y_true = [0,0,1,1], y_pred = [0,1,1,1]: balanced_accuracy 0.75, macro f1 0.7333333333333334
  CHECK(score("balanced_accuracy", {0, 0, 1, 1}, {0, 1, 1, 1}, 3) == Approx(0.75).epsilon(1e-12));
  CHECK(score("macro_f1", {0, 0, 1, 1}, {0, 1, 1, 1}, 3) == Approx(0.7333333333333334).epsilon(1e-12));
  // Class 2 predicted but never true: recall undefined, left out of balanced accuracy (0.5 with a
  // warning in scikit-learn); in macro F1 it counts as 0: f1_score -> 0.38888888888888884
  CHECK(score("balanced_accuracy", {0, 0, 1, 1}, {0, 2, 1, 0}, 3) == Approx(0.5).epsilon(1e-12));
  CHECK(score("macro_f1", {0, 0, 1, 1}, {0, 2, 1, 0}, 3) == Approx(0.38888888888888884).epsilon(1e-12));
}

TEST_CASE("All five metrics equal scikit-learn's to 1e-9 on fixed predictions", "[metrics]") {
  // tests/fixtures/metrics/make_reference.py wrote the predictions and scikit-learn 1.2.1's scores.
  std::ifstream in(test::fixtures_dir() + "/metrics/reference.csv");
  REQUIRE(in);
  Registry registry;
  registry.add_directory(test::plugin_dir());
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    const std::int64_t k = std::stoll(f[1]), n = std::stoll(f[2]);
    Predictions p;
    p.num_classes = k;
    for (std::int64_t i = 0; i < n; ++i) p.labels.push_back(std::stoll(f[5 + i]));
    for (std::int64_t i = 0; i < n * k; ++i) p.scores.push_back(std::stod(f[5 + n + i]));
    const double expected = std::stod(f[4]);
    CAPTURE(f[0], f[3], expected);
    const double got = registry.create<Metric>(f[3], Options("metrics", ""))->score(p);
    CHECK(std::abs(got - expected) < 1e-9);
    ++cases;
  }
  CHECK(cases == 15);
}

TEST_CASE("roc_auc counts tied scores as halves and log_loss is a loss", "[metrics]") {
  Registry registry;
  registry.add_directory(test::plugin_dir());
  // Positives score 0.5 and 0.9, negatives 0.5 and 0.1: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5, 0.5>0.1) -> 3.5/4.
  Predictions p;
  p.num_classes = 2;
  p.labels = {1, 1, 0, 0};
  p.scores = {0.5, 0.5, 0.1, 0.9, 0.5, 0.5, 0.9, 0.1};
  CHECK(registry.create<Metric>("roc_auc", Options("metrics", ""))->score(p) == Approx(0.875).epsilon(1e-12));
  auto log_loss = registry.create<Metric>("log_loss", Options("metrics", ""));
  CHECK_FALSE(log_loss->higher_is_better());
  // -mean(log 0.5, log 0.9, log 0.5, log 0.9)
  CHECK(log_loss->score(p) == Approx(-(2 * std::log(0.5) + 2 * std::log(0.9)) / 4).epsilon(1e-12));
}
