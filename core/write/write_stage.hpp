// The write stage: every result file of the run directory (results.csv, gain.csv, gain.json,
// transferability.csv, predictions/*.kgpred, run.json), each written atomically, then the report
// drawn from them (report.hpp). docs/user-guide.md describes the files.
// Threads: called from root's main thread.
#pragma once

#include <string>

#include "config/config.hpp"
#include "extract/extraction.hpp"

namespace kgain::core {

struct StudyPlan;
struct Scores;
struct Analysis;

// `plan` is the plan without the images extraction left out; `seconds` the run's time so far.
void write_stage(const Config& config, const StudyPlan& plan, const ExtractionStats& extraction, const Scores& scores,
                 const Analysis& analysis, const std::string& run_dir, double seconds);

}  // namespace kgain::core
