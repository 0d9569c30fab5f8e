// Evaluation: a fresh probe per (variant, tap, fold), scored by every metric.
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

#include "kgain/core/splits.hpp"

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

struct Evaluation {
  std::vector<ScoreRow> rows;
  // predictions[v][t][f]: variant v's probe at tap t on fold f's test images (in fold order).
  std::vector<std::vector<std::vector<Predictions>>> predictions;
};

// features[v][t] as extract_features returns them; labels of every image. `threads` fits run side
// by side (each with one LibTorch thread); the result does not depend on it.
Evaluation evaluate(const std::vector<std::vector<at::Tensor>>& features, const std::vector<Variant>& variants,
                               const std::vector<std::string>& taps, const std::vector<std::int64_t>& labels,
                               std::int64_t num_classes, const SplitPlan& splits,
                               const std::string& probe_name, const std::function<std::shared_ptr<Probe>()>& make_probe,
                               std::uint64_t probe_seed,
                               const std::vector<NamedMetric>& metrics, int threads = 1);

}  // namespace kgain::core
