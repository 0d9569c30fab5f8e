// The extraction stage: every variant's features of every image into the feature store, and
// what it found (images that could not be decoded). In an MPI job the ranks share the images
// that the store lacks, and the stage adds up what they did: root holds the totals, every rank
// the full list of bad images (another rank's bad image has no features for this rank to read).
// Threads: called from the run's main thread on every rank; the extraction runs its own workers.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "extract/extraction.hpp"
#include "extract/feature_store.hpp"

namespace kgain::core {

struct StudyPlan;

struct Extraction {
  std::vector<FeatureSpace> spaces;  // one per variant of the plan, holding every image's features
  ExtractionStats stats;             // every rank's, added up on root
};

Extraction extract_stage(const Config& config, const StudyPlan& plan, const std::string& store);

// What extract_features needs of the plan and the config (for the source-prediction pass too).
ExtractionInput extraction_input(const Config& config, const StudyPlan& plan);

}  // namespace kgain::core
