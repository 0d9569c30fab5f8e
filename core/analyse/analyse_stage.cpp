#include "analyse/analyse_stage.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "analyse/transferability.hpp"
#include "evaluate/evaluate_stage.hpp"
#include "extract/extract_stage.hpp"
#include "extract/feature_space_key.hpp"
#include "plan/study_plan.hpp"

namespace kgain::core {
namespace {

GainSettings gain_settings(const Config& config) {
  GainSettings settings;
  settings.bootstrap = config.bootstrap;
  settings.confidence = config.confidence;
  settings.seed = config.analysis_seed;
  settings.sweet_spot_epsilon = config.sweet_spot_epsilon;
  settings.threads = at::get_num_threads();
  return settings;
}

// Which estimator ranks the taps like the first probe's first metric (pretrained features).
std::vector<std::pair<std::string, double>> rank_agreement(const Config& config, const StudyPlan& plan,
                                                           const std::vector<TransferabilityRow>& transferability,
                                                           const std::vector<GainRow>& gain) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& fm : plan.estimators) {
    if (transferability.empty()) break;
    std::vector<double> estimate, probe;
    for (const auto& r : transferability)
      if (r.metric == fm.name) estimate.push_back(r.pretrained);
    for (const auto& g : gain)
      if (g.probe == config.probes.front().name && g.metric == config.metrics.front().name)
        probe.push_back(g.pretrained);
    out.push_back({fm.name, spearman(estimate, probe)});
    spdlog::info("transferability: {} ranks the taps with Spearman {:.3f} against the probe's {}", fm.name,
                 out.back().second, config.metrics.front().name);
  }
  return out;
}

// LEEP and NCE from the backbone's head; empty when it has none (a warning) or was not asked.
std::vector<std::pair<std::string, double>> source_transferability(const Config& config, const StudyPlan& plan,
                                                                   const Extraction& extraction,
                                                                   const std::string& store) {
  if (!plan.backbone->has_pretrained_weights() || !config.source_transferability) return {};
  FeatureSpace space(store, feature_space_key(config, plan, "source (class probabilities of the backbone's head)"),
                     StoragePrecision::float32);
  const at::Tensor probs = extract_source_predictions(*plan.backbone, config.pooling, extraction_input(config, plan),
                                                      space, extraction.stats.bad_images);
  if (!probs.defined()) {
    spdlog::warn(
        "[transferability] source = true, but the backbone has no classifier head: LEEP and NCE are not computed");
    return {};
  }
  const std::vector<std::int64_t> rows = usable_rows(plan, extraction.stats.bad_images);
  std::vector<std::int64_t> labels;
  for (auto i : rows) labels.push_back(plan.labels[static_cast<std::size_t>(i)]);
  const at::Tensor p = probs.index_select(0, at::tensor(rows, at::kLong));
  const auto k = static_cast<std::int64_t>(plan.classes.size());
  std::vector<std::pair<std::string, double>> out{{"leep", leep(p, labels, k)}, {"nce", nce(p, labels, k)}};
  spdlog::info("source transferability: LEEP {:.4f}, NCE {:.4f}", out[0].second, out[1].second);
  return out;
}

}  // namespace

Analysis analyse_stage(const Config& config, const StudyPlan& plan, const Extraction& extraction, const Scores& scores,
                       const std::string& store) {
  Analysis analysis;
  const GainSettings settings = gain_settings(config);
  for (const auto& evaluation : scores.evaluations) {
    const auto gain =
        compute_gain(evaluation, plan.variants, plan.taps, plan.metrics, pooled_parts(config.pooling), settings);
    analysis.gain.insert(analysis.gain.end(), gain.begin(), gain.end());
  }
  analysis.rank_agreement = rank_agreement(config, plan, scores.transferability, analysis.gain);
  analysis.source_transferability = source_transferability(config, plan, extraction, store);
  return analysis;
}

}  // namespace kgain::core
