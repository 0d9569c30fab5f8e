#include "extract/feature_space_key.hpp"

#include <cstdlib>
#include <sstream>

#include <kgain/util/file_hash.hpp>

#include "plan/study_plan.hpp"

namespace kgain::core {

std::string feature_store_dir(const Config& config, const std::string& run_dir) {
  if (!config.feature_store.empty()) return config.feature_store;
  if (const char* env = std::getenv("KGAIN_FEATURE_STORE"); env && *env) return env;
  return run_dir + "/cache";
}

std::string feature_space_key(const Config& config, const StudyPlan& plan, const std::string& variant) {
  std::ostringstream key;
  key << "kgain features v3\nbackbone " << plan.backbone->fingerprint() << "\ntaps";
  for (const auto& t : plan.tap_names) key << ' ' << t;
  key << "\ninput_size " << plan.prep.size << "\nresize " << plan.prep.resize << "\nstain "
      << config.stain_normalization << ' '
      << (config.stain_reference.empty() ? "-" : file_fingerprint(config.stain_reference)) << "\npooling "
      << to_string(config.pooling) << "\nvariant " << variant;
  if (variant.rfind("random-", 0) == 0)
    key << "\nbatch_norm_calibration "
        << (config.recalibrate_batch_norm ? std::to_string(plan.calibration_identity) : "none");
  return key.str();
}

std::vector<FeatureSpace> open_feature_spaces(const Config& config, const StudyPlan& plan, const std::string& store) {
  const StoragePrecision precision =
      config.storage == "float16" ? StoragePrecision::float16 : StoragePrecision::float32;
  std::vector<FeatureSpace> spaces;
  for (const auto& v : plan.variants) spaces.emplace_back(store, feature_space_key(config, plan, v.name()), precision);
  return spaces;
}

}  // namespace kgain::core
