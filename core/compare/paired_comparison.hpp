// Paired comparison of runs: did one run's pretrained network (say, pretrained on ImageNet) do
// better than another's (say, on iNaturalist birds) at each tap, on the same test images?
//
// The runs must share their images and splits (splits.csv, paths compared after lexical
// normalization), their taps and their metrics; each is read from its run directory
// (predictions/*.kgpred, splits.csv, run.json, config.resolved.toml), nothing is refitted.
// Predictions files: predictions_file.hpp; splits.csv: splits_file.hpp.
// For each probe present in every run, each metric and tap, and each pair of runs (a, b):
//   score_difference = S_a(pretrained) - S_b(pretrained)       (in the metric's units)
//   gain_difference  = gain_a - gain_b                          (gains as gain.hpp defines them)
// with a paired bootstrap as the within-run gain analysis (bootstrap.hpp): each replicate draws
// the test images of every fold with replacement, the same draw for every run and variant, and
// the random seeds with replacement (one draw shared by all runs when they list the same random
// variants, so that the identical random networks of one architecture stay paired; else one
// draw per run). Percentile intervals; p-value of "no difference" as bootstrap.hpp's, and its
// Benjamini-Hochberg adjustment across taps (q). A run
// compared with itself gives exactly 0 with the interval [0, 0] and p = 1.
// Threads: compare_runs uses `threads` workers; the result does not depend on their number.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kgain::core {

struct PairedRow {
  std::string probe, metric;
  std::size_t tap_index = 0;
  std::string tap;
  std::size_t run_a = 0, run_b = 0;  // indices into PairedComparison::runs
  double score_a = 0, score_b = 0, score_difference = 0, score_low = 0, score_high = 0, score_p = 1;
  double gain_a = 0, gain_b = 0, gain_difference = 0, gain_low = 0, gain_high = 0,
         gain_p = 1;  // NaN without random variants
  // Benjamini-Hochberg adjusted p-values over the taps of one (probe, metric, pair): a study
  // tests every tap, so about 1 in 20 taps shows p < 0.05 by chance alone; q < 0.05 keeps the
  // expected share of false discoveries among the taps called different under 5%.
  double score_q = 1, gain_q = 1;
};

struct ComparedRun {
  std::string dir;
  std::string label;     // the run's name, or its directory when two runs share a name
  std::string backbone;  // as gain.json names it
  std::string weights;   // the backbone's weights file, when its config names one
};

struct PairedComparison {
  std::vector<ComparedRun> runs;
  std::string dataset;
  std::vector<std::string> taps, probes, metrics;
  std::vector<bool> higher_is_better;  // per metric
  bool shared_random_draw = false;     // the runs list the same random variants (one seed draw for all)
  // Every random variant predicted exactly the same in every run (one architecture, same seeds
  // and init): each gain difference then equals the score difference (turned for losses).
  bool identical_random_baselines = false;
  int replicates = 0;
  double confidence = 0.95;
  std::uint64_t seed = 0;
  std::vector<PairedRow> rows;  // per probe, metric, tap, then pair (a < b)
};

struct PairedSettings {
  int replicates = -1;     // -1: the first run's [analysis] bootstrap
  double confidence = -1;  // -1: the first run's [analysis] confidence
  std::uint64_t seed = 0;
  int threads = 1;
  std::vector<std::string> plugin_paths;  // searched besides each run's [run] plugin_paths
};

// Throws std::runtime_error naming the run directory and the file when the runs cannot be
// paired (other images or splits, other taps or metrics, a missing or damaged file).
PairedComparison compare_runs(const std::vector<std::string>& run_dirs, const PairedSettings& settings);

// Benjamini-Hochberg adjusted p-values (q), in the order of `p`; NaN entries stay NaN and do not count.
std::vector<double> benjamini_hochberg(const std::vector<double>& p);

// paired.csv and paired.json (written durably); the JSON also holds the runs and settings.
void write_paired_csv(const std::string& path, const PairedComparison& comparison);
void write_paired_json(const std::string& path, const PairedComparison& comparison);

}  // namespace kgain::core
