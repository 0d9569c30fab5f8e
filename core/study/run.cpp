#include "study/run.hpp"

#include <chrono>

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "analyse/analyse_stage.hpp"
#include "cluster/cluster.hpp"
#include "evaluate/evaluate_stage.hpp"
#include "extract/extract_stage.hpp"
#include "extract/feature_space_key.hpp"
#include "plan/study_plan.hpp"
#include "runtime/machine.hpp"
#include "write/results.hpp"
#include "write/write_stage.hpp"

namespace kgain::core {

void set_threads(int threads) {
  const int n = threads > 0 ? threads : hardware_threads();
  at::set_num_threads(n);
}

namespace {

// What the command line prints, from the stages' results.
RunSummary summarise(const std::string& run_dir, const StudyPlan& plan, Extraction extraction, Scores scores,
                     Analysis analysis) {
  RunSummary summary;
  summary.root = Cluster::get().root();
  summary.run_dir = run_dir;
  summary.split_strategy = plan.splits.strategy;
  summary.images = static_cast<std::int64_t>(plan.samples.size());
  summary.extraction = std::move(extraction.stats);
  summary.scores = std::move(scores.rows);
  summary.transferability = std::move(scores.transferability);
  summary.gain = std::move(analysis.gain);
  summary.rank_agreement = std::move(analysis.rank_agreement);
  summary.source_transferability = std::move(analysis.source_transferability);
  return summary;
}

}  // namespace

// The study as the architecture page draws it: plan, extract, evaluate, analyse, write. Each stage
// takes what it needs and returns what it made; rank sharing happens inside the stages.
RunSummary run_study(const Config& config, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Cluster& cluster = Cluster::get();  // under mpirun: one of several ranks (cluster.hpp)
  const std::string run_dir = run_dir_of(config, options);
  const OpenRunDir dir(config, options, run_dir);
  set_threads(config.threads);
  spdlog::info("LibTorch {} with {} threads", TORCH_VERSION, at::get_num_threads());

  const StudyPlan plan = plan_study(config);
  const std::string store = feature_store_dir(config, run_dir);
  claim_run_dir(config, plan, run_dir, store);
  Extraction extraction = extract_stage(config, plan, store);
  const StudyPlan usable = without_images(plan, extraction.stats.bad_images);
  if (cluster.root() && !extraction.stats.bad_images.empty())  // the images left out show as "unused"
    write_splits_csv(run_dir + "/splits.csv", usable.samples, usable.classes, usable.splits);
  Scores scores = evaluate_stage(config, usable, extraction);
  if (!cluster.root()) {
    spdlog::info("rank {} done: its share is with rank 0", cluster.rank());
    return summarise(run_dir, usable, std::move(extraction), std::move(scores), {});
  }
  Analysis analysis = analyse_stage(config, usable, extraction, scores, store);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_stage(config, usable, extraction.stats, scores, analysis, run_dir, seconds);
  spdlog::info("done in {:.1f} s: {}/report.html, gain.csv, results.csv", seconds, run_dir);
  RunSummary summary = summarise(run_dir, usable, std::move(extraction), std::move(scores), std::move(analysis));
  summary.seconds = seconds;
  return summary;
}

}  // namespace kgain::core
