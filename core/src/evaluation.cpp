#include "kgain/core/evaluation.hpp"

#include "kgain/core/progress.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

namespace kgain::core {

Evaluation evaluate(const std::vector<std::vector<at::Tensor>>& features, const std::vector<Variant>& variants,
                               const std::vector<std::string>& taps, const std::vector<std::int64_t>& labels,
                               std::int64_t num_classes, const SplitPlan& splits,
                               const std::string& probe_name, const std::function<std::shared_ptr<Probe>()>& make_probe,
                               std::uint64_t probe_seed,
                               const std::vector<NamedMetric>& metrics, int threads) {
  const auto start = std::chrono::steady_clock::now();
  const at::Tensor all_labels = at::tensor(labels, at::kLong);
  Evaluation out;
  out.predictions.assign(variants.size(), std::vector<std::vector<Predictions>>(taps.size(), std::vector<Predictions>(splits.folds.size())));
  const std::size_t per_fold = variants.size() * taps.size(), total = splits.folds.size() * per_fold;
  Progress progress("probe " + probe_name, "fits", static_cast<std::int64_t>(total));
  std::vector<at::Tensor> train_idx, test_idx, y_train;
  for (const auto& fold : splits.folds) {
    train_idx.push_back(at::tensor(fold.train, at::kLong));
    test_idx.push_back(at::tensor(fold.test, at::kLong));
    y_train.push_back(all_labels.index_select(0, train_idx.back()));
  }
  // One task per (fold, variant, tap), each a fresh probe with the same seed, so the result
  // does not depend on which worker runs it or when. Rows keep the sequential order.
  std::vector<std::vector<ScoreRow>> rows(total);
  std::atomic<std::size_t> next{0}, done{0};
  std::mutex progress_mutex, factory_mutex;
  const auto fit_tasks = [&](bool worker) {
    if (worker) at::set_num_threads(1);  // this thread only (OpenMP's thread count is per thread)
    for (std::size_t task = next++; task < total; task = next++) {
      const std::size_t f = task / per_fold, v = task % per_fold / taps.size(), t = task % taps.size();
      const auto& fold = splits.folds[f];
      const at::Tensor& x = features[v][t];
      std::shared_ptr<Probe> probe;
      {
        std::lock_guard<std::mutex> lock(factory_mutex);  // the plugin's Options record which keys were read
        probe = make_probe();
      }
      probe->fit(x.index_select(0, train_idx[f]), y_train[f], num_classes, probe_seed);
      const at::Tensor proba = probe->predict_proba(x.index_select(0, test_idx[f])).to(at::kDouble).contiguous();
      if (proba.dim() != 2 || proba.size(0) != static_cast<std::int64_t>(fold.test.size()) || proba.size(1) != num_classes ||
          !at::isfinite(proba).all().item<bool>())
        throw std::runtime_error("probe '" + probe_name + "' returned " + (proba.dim() == 2 ? "non-finite or mis-shaped" : "mis-shaped") +
                                 " class probabilities for variant " + variants[v].name() + ", tap " + taps[t] + ", fold " +
                                 std::to_string(f) + " (expected " + std::to_string(fold.test.size()) + " x " + std::to_string(num_classes) +
                                 " finite values); no score is computed from them");
      Predictions predictions;
      predictions.num_classes = num_classes;
      predictions.labels.assign(fold.test.size(), 0);
      for (std::size_t i = 0; i < fold.test.size(); ++i) predictions.labels[i] = labels[fold.test[i]];
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
        rows[task].push_back(row);
      }
      out.predictions[v][t][f] = std::move(predictions);
      const std::size_t fits = ++done;
      std::lock_guard<std::mutex> lock(progress_mutex);
      progress.advance(1);
      if (fits % per_fold == 0 || fits == total)
        spdlog::debug("probe {}: {}/{} fitted ({:.1f} s)", probe_name, fits, total,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  };
  // A plugin that throws in a worker stops every worker; the first error is rethrown here
  // (an exception escaping a std::thread would end the process without a message).
  std::exception_ptr first_error;
  std::mutex error_mutex;
  const auto work = [&](bool worker) {
    try {
      fit_tasks(worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      next = total;  // no further task starts
    }
  };
  // Probes on a few thousand images are too small to keep several cores busy one at a time:
  // fits run side by side instead, one core each.
  std::vector<std::thread> pool;
  for (int i = 1; i < std::min<int>(threads, static_cast<int>(total)); ++i) pool.emplace_back(work, true);
  work(pool.empty() ? false : true);
  for (auto& th : pool) th.join();
  if (!pool.empty()) at::set_num_threads(threads);
  if (first_error) std::rethrow_exception(first_error);
  for (auto& r : rows) out.rows.insert(out.rows.end(), r.begin(), r.end());
  return out;
}

}  // namespace kgain::core
