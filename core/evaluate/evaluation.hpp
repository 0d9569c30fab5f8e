// Evaluation: a fresh probe per (probe, variant, tap, fold), or per (probe, variant, tap) for a
// probe that fits its folds together (Probe::fit_folds), scored by every metric, run tap by tap
// so that memory holds the features of the taps in flight, never those of every tap.
//
// The study calls evaluate_taps once per variant and group of taps it has loaded (usually one
// tap; more when one tap offers fewer tasks than there are threads), then finish() puts the rows in their
// fixed order: probe, fold, variant, tap. Every fit uses the probe's own seed and sees exactly
// the same data whatever the grouping or the number of threads, so results do not depend on them.
// Threads: evaluate_taps runs `threads` fits side by side (each with one LibTorch thread);
// probe objects are made one at a time (under a lock), metrics are called from every worker.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <kgain/backbone.hpp>
#include <kgain/metric.hpp>
#include <kgain/probe.hpp>

#include "runtime/progress.hpp"
#include "plan/splits.hpp"

namespace kgain::core {

struct ScoreRow {
  std::string probe;    // the probe's name in the config
  std::string variant;  // "pretrained" or "random-<seed>"
  bool pretrained = false;
  std::uint64_t seed = 0;
  std::size_t tap_index = 0;
  std::string tap;
  int fold = 0;
  std::string metric;
  double score = 0;
  std::int64_t n_train = 0;
  std::int64_t n_test = 0;
};

struct NamedMetric {
  std::string name;
  std::shared_ptr<Metric> metric;
};

struct ProbeSpec {
  std::string name;
  std::function<std::shared_ptr<Probe>()> make;
  std::uint64_t seed = 0;
  bool folds_together = false;  // the probe's fits_folds_together(): one fit_folds() per tap
};

// One probe's results over the whole study.
struct Evaluation {
  std::vector<ScoreRow> rows;  // after finish(): by fold, variant, tap, then metric
  // predictions[v][t][f]: variant v's probe at tap t on fold f's test images (in fold order).
  std::vector<std::vector<std::vector<Predictions>>> predictions;
  std::vector<std::vector<ScoreRow>> task_rows;  // [(f * variants + v) * taps + t], until finish()
  void finish();
};

// What every fit of the study shares.
struct EvaluationSetup {
  const std::vector<Variant>& variants;
  const std::vector<std::string>& taps;  // every tap's name
  const std::vector<std::int64_t>& labels;
  std::int64_t num_classes = 0;
  const SplitPlan& splits;
  const std::vector<ProbeSpec>& probes;
  const std::vector<NamedMetric>& metrics;
  int threads = 1;
};

// The tasks evaluate_taps runs side by side for one tap of one variant: a fit per probe and fold,
// or one per probe for a probe that fits its folds together.
std::size_t tasks_per_tap(const EvaluationSetup& setup);

// One Evaluation per probe, sized for the study.
std::vector<Evaluation> start_evaluation(const EvaluationSetup& setup);

// Fits every probe on every fold for variant `variant` at the taps `tap_indices`, whose
// features are features[k] (tap tap_indices[k], float [images, dim]), into `evaluations`. The
// study passes one variant at a time, so that memory holds one variant's features.
void evaluate_taps(const EvaluationSetup& setup, const std::vector<std::size_t>& tap_indices, std::size_t variant,
                   const std::vector<at::Tensor>& features, std::vector<Evaluation>& evaluations, Progress& progress);

// Scores `predictions` (probe p, variant v, fold f, tap) with every metric and keeps both in
// evaluations[p]: what evaluate_taps does after each fit, and what root does with the
// predictions other ranks send it (cluster.hpp).
void record_predictions(const EvaluationSetup& setup, std::size_t p, std::size_t v, std::size_t f, std::size_t tap,
                        Predictions predictions, Evaluation& evaluation);

}  // namespace kgain::core
