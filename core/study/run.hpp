// Run: one study from a config to a run directory, in five stages (docs/architecture.md):
// plan (plan/study_plan.hpp), extract (extract/extract_stage.hpp), evaluate
// (evaluate/evaluate_stage.hpp), analyse (analyse/analyse_stage.hpp), write
// (write/write_stage.hpp); the run directory is run_dir/run_dir.hpp.
//
// The run directory holds config.resolved.toml (the config with every default), kgain.log,
// splits.csv (which image went where), taps.csv, results.csv (one row per probe x variant x tap
// x fold x metric), gain.csv and gain.json (one row per probe x tap x metric),
// transferability.csv, run.json, report.html and cache/ (the feature store, unless the config
// names another). Rerunning the same config into the same directory reuses the stored features;
// a directory that holds a run of a different config is refused rather than mixed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analyse/gain.hpp"
#include "analyse/transferability.hpp"
#include "config/config.hpp"
#include "extract/extraction.hpp"
#include "run_dir/run_dir.hpp"

namespace kgain::core {

// What the command line prints: the stages' results, put together.
struct RunSummary {
  bool root = true;  // false on the other ranks of an MPI job: root (rank 0) holds the results
  std::string run_dir;
  std::string split_strategy;
  std::int64_t images = 0;
  ExtractionStats extraction;
  std::vector<ScoreRow> scores;
  std::vector<GainRow> gain;
  std::vector<TransferabilityRow> transferability;
  // Spearman correlation, over taps, of each transferability estimator with the first metric's probe score.
  std::vector<std::pair<std::string, double>> rank_agreement;
  // LEEP and NCE (per backbone, not per tap), when [transferability] source = true.
  std::vector<std::pair<std::string, double>> source_transferability;
  double seconds = 0;
};

// Under an MPI launcher every rank calls it (cluster.hpp); the outputs are those of one process.
RunSummary run_study(const Config& config, const RunOptions& options);

// Sets LibTorch's intra-op threads (0: every core); LibTorch defaults to 1 here.
void set_threads(int threads);

}  // namespace kgain::core
