// Report: report.html for a run directory, and compare.html for several runs.
//
// The report is one self-contained HTML file (no script, no external file, no network): charts
// are inline SVG drawn by SvgChart. It is made only from the files of the run directory
// (gain.json, run.json, config.resolved.toml), so `kgain report RUN_DIR` can redraw it at any
// time, for example after a kgain update.
#pragma once

#include <string>
#include <vector>

#include "compare/paired_comparison.hpp"

namespace kgain::core {

// Writes RUN_DIR/report.html; returns its path. Throws std::runtime_error naming a missing or
// unreadable file.
std::string write_report(const std::string& run_dir);

// Writes a comparison of several runs (each a run directory) to `out_file`: gain and score per
// relative depth (tap index / last index, so different backbones share the axis) and score vs
// parameters, for each run's first probe and metric.
void write_comparison(const std::vector<std::string>& run_dirs, const std::string& out_file);

// Writes the report of a paired comparison (compare_runs): each run's score and gain per tap,
// the differences from the first run with their paired intervals, and which run wins at each tap
// and by how much.
void write_paired_report(const PairedComparison& comparison, const std::string& out_file);

}  // namespace kgain::core
