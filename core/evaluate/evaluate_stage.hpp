// The evaluation stage: probes, transferability estimators and CKA on every tap of every
// variant, from the feature store (docs/protocol.md). Memory holds one variant's features of the
// taps in flight. In an MPI job each rank evaluates its share of the taps and the stage gathers
// them on root, which then holds every score, as one process would.
// Threads: called from the run's main thread on every rank; it runs its own workers.
#pragma once

#include <cstdint>
#include <vector>

#include "analyse/transferability.hpp"
#include "config/config.hpp"
#include "evaluate/evaluation.hpp"
#include "extract/extraction.hpp"

namespace kgain::core {

struct StudyPlan;
struct Extraction;

struct Scores {
  std::vector<Evaluation> evaluations;              // per probe, with its predictions (root: every tap)
  std::vector<ScoreRow> rows;                       // every probe's rows, in the results' order (root)
  std::vector<TransferabilityRow> transferability;  // per tap and estimator (and CKA), in tap order
};

// `plan` is the plan without the images extraction left out (without_images).
Scores evaluate_stage(const Config& config, const StudyPlan& plan, const Extraction& extraction);

// The rows of the images that are used (not left out), for the estimators.
std::vector<std::int64_t> usable_rows(const StudyPlan& plan, const std::vector<BadImage>& bad_images);

}  // namespace kgain::core
