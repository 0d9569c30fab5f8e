// A run directory as `kgain compare --paired` reads it, and the checks that two runs can be
// compared image by image: the same splits, predictions made by the run that holds them and for
// its splits, the same image content (internal to compare/).
// Threads: pure functions of the files they read.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compare/paired_comparison.hpp"
#include "config/config.hpp"
#include "write/predictions_file.hpp"
#include "write/splits_file.hpp"

namespace kgain::core {

// One run as the comparison needs it.
struct LoadedRun {
  ComparedRun info;
  Config config;
  std::vector<SplitRow> splits;
  std::vector<std::string> classes;
  std::map<std::string, RunPredictions> predictions;  // by probe name
  std::string metrics_table;                          // [metrics] of the resolved config, as TOML
};

// Reads the run in `dir` (config, splits, run.json, every predictions file), each file checked
// against the run; throws naming the directory and the file.
LoadedRun load_run(const std::string& dir);

// The runs must have tested the same images in the same folds.
void check_same_splits(const LoadedRun& a, const LoadedRun& b);

// The predictions must be those of the splits: same test images per fold, same labels.
void check_predictions_match_splits(const LoadedRun& run, const RunPredictions& p);

// Images with the same paths but other bytes are other images: a paired difference would then
// compare scores on different test sets (the identities are those the feature store keys on).
void check_same_content(const LoadedRun& a, const LoadedRun& b, const std::vector<std::uint64_t>& of_b,
                        const std::vector<std::uint64_t>& of_a);

// run.json of the run in `dir`, parsed; throws naming the file.
nlohmann::json read_run_json(const std::string& dir, const std::string& name);

}  // namespace kgain::core
