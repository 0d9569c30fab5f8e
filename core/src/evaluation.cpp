#include "kgain/core/evaluation.hpp"

#include "kgain/core/progress.hpp"

#include <chrono>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

namespace kgain::core {

Evaluation evaluate(const std::vector<std::vector<at::Tensor>>& features, const std::vector<Variant>& variants,
                               const std::vector<std::string>& taps, const std::vector<std::int64_t>& labels,
                               std::int64_t num_classes, const SplitPlan& splits,
                               const std::string& probe_name, const std::function<std::shared_ptr<Probe>()>& make_probe,
                               std::uint64_t probe_seed,
                               const std::vector<NamedMetric>& metrics) {
  const auto start = std::chrono::steady_clock::now();
  const at::Tensor all_labels = at::tensor(labels, at::kLong);
  Evaluation out;
  out.predictions.assign(variants.size(), std::vector<std::vector<Predictions>>(taps.size(), std::vector<Predictions>(splits.folds.size())));
  std::size_t fits = 0;
  Progress progress("probe " + probe_name, "fits", static_cast<std::int64_t>(variants.size() * taps.size() * splits.folds.size()));
  const std::size_t total = variants.size() * taps.size() * splits.folds.size();
  for (std::size_t f = 0; f < splits.folds.size(); ++f) {
    const auto& fold = splits.folds[f];
    const at::Tensor train_idx = at::tensor(fold.train, at::kLong), test_idx = at::tensor(fold.test, at::kLong);
    const at::Tensor y_train = all_labels.index_select(0, train_idx);
    Predictions predictions;
    predictions.num_classes = num_classes;
    predictions.labels.assign(fold.test.size(), 0);
    for (std::size_t i = 0; i < fold.test.size(); ++i) predictions.labels[i] = labels[fold.test[i]];
    for (std::size_t v = 0; v < variants.size(); ++v) {
      for (std::size_t t = 0; t < taps.size(); ++t) {
        const at::Tensor& x = features[v][t];
        auto probe = make_probe();
        probe->fit(x.index_select(0, train_idx), y_train, num_classes, probe_seed);
        const at::Tensor proba = probe->predict_proba(x.index_select(0, test_idx)).to(at::kDouble).contiguous();
        predictions.scores.assign(proba.data_ptr<double>(), proba.data_ptr<double>() + proba.numel());
        for (const auto& m : metrics) {
          ScoreRow row;
          row.probe = probe_name;
          row.variant = variants[v].name();
          row.pretrained = variants[v].kind == Variant::Kind::pretrained;
          row.seed = variants[v].seed;
          row.tap_index = t;
          row.tap = taps[t];
          row.fold = static_cast<int>(f);
          row.metric = m.name;
          row.score = m.metric->score(predictions);
          row.n_train = static_cast<std::int64_t>(fold.train.size());
          row.n_test = static_cast<std::int64_t>(fold.test.size());
          out.rows.push_back(row);
        }
        out.predictions[v][t][f] = predictions;
        ++fits;
        progress.advance(1);
      }
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      spdlog::debug("probe {}: {}/{} fitted ({:.1f} s)", probe_name, fits, total, elapsed);
    }
  }
  return out;
}

}  // namespace kgain::core
