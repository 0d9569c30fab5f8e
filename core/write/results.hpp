// Results files: results.csv, gain.csv, splits.csv, taps.csv, and the console's summary table.
// Numbers are written in the shortest form that reads back exactly, so a rerun that computes the
// same numbers writes the same bytes.
#pragma once

#include "extract/durable_file.hpp"

#include <string>
#include <vector>

#include <kgain/backbone.hpp>
#include <kgain/dataset.hpp>

#include "analyse/gain.hpp"
#include "plan/splits.hpp"
#include "analyse/transferability.hpp"

namespace kgain::core {

struct StudyLabels {
  std::string dataset;
  std::string backbone;
};

void write_results_csv(const std::string& path, const StudyLabels& labels, const std::vector<ScoreRow>& rows);
void write_gain_csv(const std::string& path, const StudyLabels& labels, const std::vector<GainRow>& rows);
// gain.json: the rows of gain.csv plus, per metric, the sweet-spot and maximum-gain taps.
void write_gain_json(const std::string& path, const StudyLabels& labels, const std::vector<GainRow>& rows,
                     double confidence, const std::vector<TransferabilityRow>& transferability,
                     const std::vector<std::pair<std::string, double>>& rank_agreement, const std::string& probe_metric,
                     const std::vector<std::pair<std::string, double>>& source_transferability = {});
void write_transferability_csv(const std::string& path, const StudyLabels& labels,
                               const std::vector<TransferabilityRow>& rows);
void write_splits_csv(const std::string& path, const std::vector<Sample>& samples,
                      const std::vector<std::string>& classes, const SplitPlan& plan);
void write_taps_csv(const std::string& path, const std::vector<TapInfo>& taps);

std::string csv_field(const std::string& s);
// A number as every result file writes it: the shortest text that reads back exactly ("0.773"),
// "" for NaN.
std::string csv_number(double v);

// The table `kgain run` prints: one line per tap of `probe` and `metric`, the tap column as wide
// as the longest name, "-" where a number is not defined (no bootstrap: interval and p; no
// pretrained weights: pretrained and gain).
std::string format_gain_table(const std::vector<GainRow>& rows, const std::string& probe, const std::string& metric);

}  // namespace kgain::core
