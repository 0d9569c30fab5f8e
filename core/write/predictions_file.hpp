// Predictions file: a probe's predictions on every test image of a run, for every variant, tap
// and fold (RUN_DIR/predictions/<probe>.kgpred). The run's scores and gains are computed from
// exactly these numbers, so a later comparison of runs (kgain compare --paired) can redo the
// paired bootstrap image by image without fitting a probe again.
//
// Layout (little-endian): "KGPRED02", u64 header length, the header (JSON: probe, classes,
// variants, taps, per fold the test images as row numbers of splits.csv with their labels, and
// "made_for": what the file was made by and for, checked by kgain compare --paired against the
// run directory it sits in and against the other runs: the hashes of the run's
// config.resolved.toml and splits.csv, its backbone's fingerprint, and every image's content
// identity in splits.csv's order),
// u64 Hash64 of the header, then for each variant, tap and fold in that order the fold's
// images x classes scores as float64, then u64 Hash64 of all score bytes. Scores are stored as
// the probe returned them (no rounding), so the scores recomputed from the file equal the run's.
//
// The reader trusts nothing: sizes are checked against the file's length before anything is
// allocated, both checksums are verified, labels and scores must be in range and finite.
// Threads: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <kgain/metric.hpp>

namespace kgain::core {

struct RunPredictions {
  std::string probe;
  std::int64_t num_classes = 0;
  std::vector<std::string> variants;  // "pretrained", "random-0", ... as in results.csv
  std::vector<std::string> taps;
  std::vector<std::vector<std::int64_t>> test_images;  // per fold: row numbers in splits.csv (0 = first image)
  // predictions[v][t][f]: variant v's probe at tap t on fold f's test images, in test_images[f] order.
  std::vector<std::vector<std::vector<Predictions>>> predictions;
  // What the predictions were made by and for (the header's "made_for").
  std::string config_hash;                      // hash_hex of the run's config.resolved.toml
  std::string splits_hash;                      // hash_hex of the run's splits.csv as finally written
  std::string backbone_fingerprint;             // Backbone::fingerprint(): covers the weights' content
  std::vector<std::uint64_t> image_identities;  // per image of splits.csv (one fold's rows), image_identity.hpp
};

// Writes durably (write_file_atomically). Throws std::invalid_argument when the sizes disagree.
void write_predictions_file(const std::string& path, const RunPredictions& predictions);

// Throws std::runtime_error naming `path` and what is wrong with it.
RunPredictions read_predictions_file(const std::string& path);
// The same from bytes in memory (`name` for messages); what the fuzz target calls.
RunPredictions parse_predictions(const std::string& bytes, const std::string& name);

}  // namespace kgain::core
