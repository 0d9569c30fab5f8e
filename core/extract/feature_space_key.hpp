// What a variant's stored features depend on besides the image: the key of its feature space
// (feature_store.hpp). Everything that changes a feature is in it (the backbone's fingerprint,
// the taps, input size, resize, stain normalization and its reference's content, pooling, the
// variant, and the batch-norm calibration images), so a change of any of them makes new
// features instead of reading stale ones; nothing else is, so that studies that differ only in
// probes, metrics or folds share their features.
// Threads: pure functions of their arguments.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "extract/feature_store.hpp"

namespace kgain::core {

struct StudyPlan;

// The feature store's folder: [run] feature_store, else $KGAIN_FEATURE_STORE, else RUN_DIR/cache.
std::string feature_store_dir(const Config& config, const std::string& run_dir);

// The key of `variant`'s features (a variant's name, or the source-prediction pass's).
std::string feature_space_key(const Config& config, const StudyPlan& plan, const std::string& variant);

// One feature space per variant of the plan, in the plan's order, in the store's precision.
std::vector<FeatureSpace> open_feature_spaces(const Config& config, const StudyPlan& plan, const std::string& store);

}  // namespace kgain::core
