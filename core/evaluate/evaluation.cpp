#include "evaluate/evaluation.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>  // at::set_num_threads (not reached through ATen.h without the precompiled header)

#include "runtime/blas_threads.hpp"

namespace kgain::core {

void Evaluation::finish() {
  for (auto& r : task_rows) rows.insert(rows.end(), r.begin(), r.end());
  task_rows.clear();
}

std::size_t tasks_per_tap(const EvaluationSetup& s) {
  std::size_t tasks = 0;
  for (const auto& p : s.probes) tasks += p.folds_together ? 1 : s.splits.folds.size();
  return std::max<std::size_t>(1, tasks);
}

std::vector<Evaluation> start_evaluation(const EvaluationSetup& s) {
  std::vector<Evaluation> out(s.probes.size());
  for (auto& e : out) {
    e.predictions.assign(s.variants.size(), std::vector<std::vector<Predictions>>(
                                                s.taps.size(), std::vector<Predictions>(s.splits.folds.size())));
    e.task_rows.resize(s.splits.folds.size() * s.variants.size() * s.taps.size());
  }
  return out;
}

namespace {

// Probe p's class probabilities for fold f (variant v, tap `tap`), checked, scored and kept.
void record_probabilities(const EvaluationSetup& s, std::size_t p, std::size_t v, std::size_t f, std::size_t tap,
                          const at::Tensor& returned, Evaluation& out) {
  const auto& fold = s.splits.folds[f];
  const at::Tensor proba = returned.defined() ? returned.to(at::kDouble).contiguous() : returned;
  if (!proba.defined() || proba.dim() != 2 || proba.size(0) != static_cast<std::int64_t>(fold.test.size()) ||
      proba.size(1) != s.num_classes || !at::isfinite(proba).all().item<bool>())
    throw std::runtime_error("probe '" + s.probes[p].name + "' returned " +
                             (proba.defined() && proba.dim() == 2 ? "non-finite or mis-shaped" : "mis-shaped") +
                             " class probabilities for variant " + s.variants[v].name() + ", tap " + s.taps[tap] +
                             ", fold " + std::to_string(f) + " (expected " + std::to_string(fold.test.size()) + " x " +
                             std::to_string(s.num_classes) + " finite values); no score is computed from them");
  Predictions predictions;
  predictions.num_classes = s.num_classes;
  predictions.labels.assign(fold.test.size(), 0);
  for (std::size_t i = 0; i < fold.test.size(); ++i)
    predictions.labels[i] = s.labels[static_cast<std::size_t>(fold.test[i])];
  predictions.scores.assign(proba.data_ptr<double>(), proba.data_ptr<double>() + proba.numel());
  record_predictions(s, p, v, f, tap, std::move(predictions), out);
}

// Fold f's rows: its training rows with their labels, and its test rows.
FoldRows fold_rows(const EvaluationSetup& s, std::size_t f) {
  const auto& fold = s.splits.folds[f];
  std::vector<std::int64_t> y_train(fold.train.size());
  for (std::size_t i = 0; i < fold.train.size(); ++i) y_train[i] = s.labels[static_cast<std::size_t>(fold.train[i])];
  return {at::tensor(fold.train, at::kLong), at::tensor(y_train, at::kLong), at::tensor(fold.test, at::kLong)};
}

// One fit: probe p, variant v, fold f at tap `tap` (features x).
void fit_one(const EvaluationSetup& s, std::size_t p, std::size_t v, std::size_t f, std::size_t tap,
             const at::Tensor& x, Probe& probe, Evaluation& out) {
  const FoldRows rows = fold_rows(s, f);
  probe.fit(x.index_select(0, rows.train), rows.labels, s.num_classes, s.probes[p].seed);
  record_probabilities(s, p, v, f, tap, probe.predict_proba(x.index_select(0, rows.test)), out);
}

// Every fold of probe p at once (Probe::fit_folds), variant v at tap `tap` (features x).
void fit_folds(const EvaluationSetup& s, std::size_t p, std::size_t v, std::size_t tap, const at::Tensor& x,
               Probe& probe, Evaluation& out) {
  std::vector<FoldRows> folds;
  for (std::size_t f = 0; f < s.splits.folds.size(); ++f) folds.push_back(fold_rows(s, f));
  const std::vector<at::Tensor> probas = probe.fit_folds(x, folds, s.num_classes, s.probes[p].seed);
  if (probas.size() != folds.size())
    throw std::runtime_error("probe '" + s.probes[p].name + "' returned class probabilities for " +
                             std::to_string(probas.size()) + " folds from fit_folds(), expected " +
                             std::to_string(folds.size()) + " (variant " + s.variants[v].name() + ", tap " +
                             s.taps[tap] + "); no score is computed from them");
  for (std::size_t f = 0; f < folds.size(); ++f) record_probabilities(s, p, v, f, tap, probas[f], out);
}

// A unit of work for one worker: probe p at taps[k], fold f, or every fold.
struct FitTask {
  std::size_t k, p, f;
  bool all_folds;
};

// Every fit of the taps in flight, widest tap first: the longest fits start first, so that the
// last ones to finish are short (results do not depend on the order).
std::vector<FitTask> fit_tasks(const EvaluationSetup& s, const std::vector<at::Tensor>& features) {
  std::vector<FitTask> tasks;
  for (std::size_t k = 0; k < features.size(); ++k)
    for (std::size_t p = 0; p < s.probes.size(); ++p) {
      if (s.probes[p].folds_together) {
        tasks.push_back({k, p, 0, true});
        continue;
      }
      for (std::size_t f = 0; f < s.splits.folds.size(); ++f) tasks.push_back({k, p, f, false});
    }
  std::stable_sort(tasks.begin(), tasks.end(),
                   [&](const FitTask& a, const FitTask& b) { return features[a.k].size(1) > features[b.k].size(1); });
  return tasks;
}

}  // namespace

void record_predictions(const EvaluationSetup& s, std::size_t p, std::size_t v, std::size_t f, std::size_t tap,
                        Predictions predictions, Evaluation& out) {
  const auto& fold = s.splits.folds[f];
  auto& rows = out.task_rows[(f * s.variants.size() + v) * s.taps.size() + tap];
  rows.clear();
  for (const auto& m : s.metrics) {
    ScoreRow row;
    row.probe = s.probes[p].name;
    row.variant = s.variants[v].name();
    row.pretrained = s.variants[v].kind == Variant::Kind::pretrained;
    row.seed = s.variants[v].seed;
    row.tap_index = tap;
    row.tap = s.taps[tap];
    row.fold = static_cast<int>(f);
    row.metric = m.name;
    row.score = m.metric->score(predictions);
    row.n_train = static_cast<std::int64_t>(fold.train.size());
    row.n_test = static_cast<std::int64_t>(fold.test.size());
    rows.push_back(row);
  }
  out.predictions[v][tap][f] = std::move(predictions);
}

void evaluate_taps(const EvaluationSetup& s, const std::vector<std::size_t>& tap_indices, std::size_t v,
                   const std::vector<at::Tensor>& features, std::vector<Evaluation>& evaluations, Progress& progress) {
  const std::vector<FitTask> tasks = fit_tasks(s, features);
  const std::size_t total = tasks.size();
  std::atomic<std::size_t> next{0};
  std::mutex progress_mutex, factory_mutex;
  const auto run_tasks = [&](bool worker) {
    if (worker) at::set_num_threads(1);  // this thread only (OpenMP's thread count is per thread)
    for (std::size_t i = next++; i < total; i = next++) {
      const FitTask& t = tasks[i];
      std::shared_ptr<Probe> probe;
      {
        std::lock_guard<std::mutex> lock(factory_mutex);  // the plugin's Options record which keys were read
        probe = s.probes[t.p].make();
      }
      if (t.all_folds)
        fit_folds(s, t.p, v, tap_indices[t.k], features[t.k], *probe, evaluations[t.p]);
      else
        fit_one(s, t.p, v, t.f, tap_indices[t.k], features[t.k], *probe, evaluations[t.p]);
      std::lock_guard<std::mutex> lock(progress_mutex);
      progress.advance(t.all_folds ? static_cast<std::int64_t>(s.splits.folds.size()) : 1);
    }
  };
  // A plugin that throws in a worker stops every worker; the first error is rethrown here
  // (an exception escaping a std::thread would end the process without a message).
  std::exception_ptr first_error;
  std::mutex error_mutex;
  const auto work = [&](bool worker) {
    try {
      run_tasks(worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      next = total;  // no further task starts
    }
  };
  // Probes on a few thousand images are too small to keep several cores busy one at a time:
  // fits run side by side instead, one core each (and one BLAS thread: blas_threads.hpp).
  const SingleThreadedBlas one_blas_thread;
  std::vector<std::thread> pool;
  for (int i = 1; i < std::min<int>(s.threads, static_cast<int>(total)); ++i) pool.emplace_back(work, true);
  work(!pool.empty());
  for (auto& th : pool) th.join();
  if (!pool.empty()) at::set_num_threads(s.threads);
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace kgain::core
