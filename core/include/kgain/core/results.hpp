// Results files: results.csv, gain.csv, splits.csv, taps.csv. Numbers are written with 17
// significant digits, so a rerun that computes the same numbers writes the same bytes.
#pragma once

#include "kgain/core/durable_file.hpp"

#include <string>
#include <vector>

#include <kgain/backbone.hpp>
#include <kgain/dataset.hpp>

#include "kgain/core/gain.hpp"
#include "kgain/core/splits.hpp"
#include "kgain/core/transferability.hpp"

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
// A number as every result file writes it: 17 significant digits (reads back exactly), "" for NaN.
std::string csv_number(double v);

}  // namespace kgain::core
