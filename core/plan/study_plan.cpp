#include "plan/study_plan.hpp"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include <kgain/util/file_hash.hpp>

#include "cluster/cluster.hpp"
#include "images/image_identity.hpp"
#include "images/stain.hpp"
#include "plan/checks.hpp"
#include "runtime/machine.hpp"

namespace kgain::core {
namespace {

// Keeps only the images some fold uses, renumbering the folds' indices.
void drop_unused(std::vector<Sample>& samples, SplitPlan& plan) {
  std::vector<std::int64_t> new_index(samples.size(), -1);
  for (const auto& fold : plan.folds) {
    for (auto i : fold.train) new_index[i] = 0;
    for (auto i : fold.test) new_index[i] = 0;
  }
  std::vector<Sample> kept;
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (new_index[i] == 0) new_index[i] = static_cast<std::int64_t>(kept.size()), kept.push_back(std::move(samples[i]));
  samples = std::move(kept);
  for (auto& fold : plan.folds) {
    for (auto& i : fold.train) i = new_index[i];
    for (auto& i : fold.test) i = new_index[i];
  }
}

// The plugins, each created (so its options are checked) before any image is read.
void load_plugins(const Config& config, StudyPlan& plan) {
  plan.registry = std::make_shared<const Registry>(load_registry(config.plugin_paths));
  const Registry& registry = *plan.registry;
  plan.dataset = registry.create<Dataset>(config.dataset);
  for (const auto& warning : plan.dataset->warnings()) spdlog::warn("dataset: {}", warning);
  plan.backbone = registry.create<Backbone>(config.backbone);
  if (config.recalibrate_batch_norm && !plan.backbone->can_recalibrate_batch_norm())
    throw std::runtime_error(config.file + ": [variants] recalibrate_batch_norm = true, but backbone '" +
                             config.backbone.plugin +
                             "' cannot re-estimate batch-norm statistics; use a backbone that can (the bundled native "
                             "backbone can) or remove the key");
  for (std::size_t p = 0; p < config.probes.size(); ++p) {
    const PluginSection& section = config.probes[p];
    const auto checked = registry.create<Probe>(section);  // validates the options now, not after extraction
    // The factory keeps the registry (and so the library) and its own copy of the options.
    plan.probes.push_back({section.name,
                           [registry = plan.registry, plugin = section.plugin, options = section.options] {
                             return registry->create<Probe>(plugin, options);
                           },
                           config.probe_seeds[p], checked->fits_folds_together()});
  }
  for (const auto& m : config.metrics) plan.metrics.push_back({m.name, registry.create<Metric>(m)});
  for (const auto& m : config.estimators) plan.estimators.push_back({m.name, registry.create<FeatureMetric>(m)});
}

// The images and their folds, checked so that no fold can yield a score of nothing.
void plan_images(const Config& config, StudyPlan& plan) {
  plan.classes = plan.dataset->class_names();
  auto& samples = plan.samples;
  samples = plan.dataset->samples();
  check_samples(samples, plan.classes, plan.dataset->description());
  samples = limit_per_class(samples, config.limit_per_class, config.split_seed);
  plan.splits = make_repeated_splits(samples, static_cast<int>(plan.classes.size()), config.split_strategy,
                                     config.folds, config.split_seed, config.split_repeats);
  drop_unused(samples, plan.splits);  // e.g. PCam's valid split: never decoded nor extracted
  check_samples(samples, plan.classes, plan.dataset->description());
  for (const auto& s : samples) plan.labels.push_back(s.label);
  check_groups(samples, plan.splits);
  check_folds(plan.splits, plan.labels, plan.classes);
  spdlog::info("dataset: {} — {} images, {} classes, split: {} ({} fold{})", plan.dataset->description(),
               samples.size(), plan.classes.size(), plan.splits.strategy, plan.splits.folds.size(),
               plan.splits.folds.size() == 1 ? "" : "s");
}

// The taps, their cost, and the variants (pretrained, and one random per seed).
void plan_network(const Config& config, StudyPlan& plan) {
  Preprocessing& prep = plan.prep;
  prep.size = config.input_size > 0 ? config.input_size : plan.backbone->native_input_size();
  prep.resize = config.resize;
  prep.pixel_source = plan.dataset.get();
  if (config.stain_normalization != "none") {
    prep.stain = std::make_shared<const StainReference>(
        make_stain_reference(config.stain_normalization, config.stain_reference));
    spdlog::info("stain normalization: {} to {}", config.stain_normalization, config.stain_reference);
  }
  plan.taps = plan.backbone->inspect(prep.size);
  for (const auto& t : plan.taps) {
    plan.tap_names.push_back(t.name);
    if (!pooling_fits(config.pooling, t.form))
      throw std::runtime_error(config.file + ": [features] pooling = \"" + to_string(config.pooling) +
                               "\" does not fit tap '" + t.name + "', " +
                               (t.form == TapForm::tokens
                                    ? "a token sequence (a transformer): use \"cls\", \"mean\" or \"cls_mean\""
                                    : "a feature map: use \"avg\", \"max\" or \"avgmax\""));
  }
  spdlog::info("backbone: {} — {} taps at {} px", plan.backbone->description(), plan.taps.size(), prep.size);
  if (plan.backbone->has_pretrained_weights())
    plan.variants.push_back(Variant{Variant::Kind::pretrained, 0});
  else
    spdlog::warn(
        "the backbone has no pretrained weights: scoring random variants only, so there is no gain to measure");
  for (auto seed : config.random_seeds) plan.variants.push_back(Variant{Variant::Kind::random, seed});
}

// Random variants re-estimate their batch-norm statistics on training images (the dataset's own
// train split, else every image: labels are not used, and one calibrated network serves every
// fold), drawn with the split seed.
void calibrate_batch_norm(const Config& config, StudyPlan& plan) {
  std::vector<std::int64_t> pool;
  for (std::size_t i = 0; i < plan.samples.size(); ++i)
    if (plan.splits.strategy != "dataset" || plan.samples[i].split == "train")
      pool.push_back(static_cast<std::int64_t>(i));
  seeded_shuffle(pool, config.split_seed);
  if (static_cast<std::int64_t>(pool.size()) > config.calibration_images) pool.resize(config.calibration_images);
  std::sort(pool.begin(), pool.end());
  const at::Tensor calibration = decode_calibration_images(plan.samples, pool, plan.prep, config.skip_bad_images);
  for (auto& v : plan.variants)
    if (v.kind == Variant::Kind::random) v.batch_norm_calibration = calibration;
  // The calibrated networks depend on these images: the feature store keys on their content.
  Hash64 h(pool.size());
  for (auto i : pool) h.update_u64(plan.identities[static_cast<std::size_t>(i)]);
  plan.calibration_identity = h.digest();
  spdlog::info("random variants: batch-norm statistics re-estimated on {} training images", calibration.size(0));
}

}  // namespace

int decode_threads(const Config& config) {
  return config.decode_threads > 0 ? config.decode_threads : std::max(1, hardware_threads() / 4);
}

StudyPlan plan_study(const Config& config) {
  StudyPlan plan;
  Cluster::get().together([&] {
    load_plugins(config, plan);
    plan_images(config, plan);
    plan_network(config, plan);
    plan.identities = image_identities(plan.samples, plan.prep.pixel_source, std::max(2, decode_threads(config)));
    if (config.recalibrate_batch_norm) calibrate_batch_norm(config, plan);
  });
  return plan;
}

StudyPlan without_images(const StudyPlan& plan, const std::vector<BadImage>& bad_images) {
  StudyPlan usable = plan;
  if (!bad_images.empty()) {
    std::set<std::int64_t> bad;
    for (const auto& b : bad_images) bad.insert(b.index);
    for (auto& fold : usable.splits.folds)
      for (auto* side : {&fold.train, &fold.test})
        side->erase(std::remove_if(side->begin(), side->end(), [&](std::int64_t i) { return bad.count(i) > 0; }),
                    side->end());
    spdlog::warn("{} image(s) could not be decoded and were left out (on_bad_image = \"skip\"); see run.json",
                 bad.size());
  }
  check_folds(usable.splits, usable.labels, usable.classes);
  check_duplicate_content(usable.samples, usable.identities, usable.splits);
  return usable;
}

}  // namespace kgain::core
