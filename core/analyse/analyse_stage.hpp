// The analysis stage: the gain with its intervals per probe, tap and metric (gain.hpp); how well
// each transferability estimator ranks the taps like the first probe's score; and, when asked,
// LEEP and NCE from the backbone's own head (one more pass of the pretrained network over the
// images, through the feature store).
// Threads: called from root's main thread; the bootstrap runs its own workers.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "analyse/gain.hpp"
#include "config/config.hpp"

namespace kgain::core {

struct StudyPlan;
struct Extraction;
struct Scores;

struct Analysis {
  std::vector<GainRow> gain;
  // Spearman correlation, over taps, of each transferability estimator with the first metric's probe score.
  std::vector<std::pair<std::string, double>> rank_agreement;
  // LEEP and NCE (per backbone, not per tap), when [transferability] source = true.
  std::vector<std::pair<std::string, double>> source_transferability;
};

// `plan` is the plan without the images extraction left out; `store` the feature store's folder.
Analysis analyse_stage(const Config& config, const StudyPlan& plan, const Extraction& extraction, const Scores& scores,
                       const std::string& store);

}  // namespace kgain::core
