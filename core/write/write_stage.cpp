#include "write/write_stage.hpp"

#include <cctype>
#include <ctime>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <kgain/util/file_hash.hpp>

#include "analyse/analyse_stage.hpp"
#include "evaluate/evaluate_stage.hpp"
#include "extract/durable_file.hpp"
#include "extract/feature_store.hpp"
#include "plan/study_plan.hpp"
#include "runtime/build_info.hpp"
#include "runtime/text_file.hpp"
#include "write/predictions_file.hpp"
#include "write/report.hpp"
#include "write/results.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

// predictions/<index>-<name>.kgpred for probe `index`; the name is kept to safe characters (the
// file's header holds the real one). `made_for` carries what the file was made by and for.
void write_probe_predictions(const std::string& run_dir, std::size_t index, const std::string& probe,
                             const Evaluation& evaluation, const std::vector<Variant>& variants,
                             const std::vector<std::string>& taps, const SplitPlan& splits, std::int64_t num_classes,
                             RunPredictions made_for) {
  RunPredictions p = std::move(made_for);
  p.probe = probe;
  p.num_classes = num_classes;
  for (const auto& v : variants) p.variants.push_back(v.name());
  p.taps = taps;
  for (const auto& fold : splits.folds) p.test_images.push_back(fold.test);
  p.predictions = evaluation.predictions;
  std::string safe;
  for (char c : probe) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_';
  write_predictions_file(run_dir + "/predictions/" + std::to_string(index) + "-" + safe.substr(0, 64) + ".kgpred", p);
}

// A rerun may drop or rename probes: their old predictions must not outlive them.
void clear_predictions(const std::string& run_dir) {
  std::error_code ec;
  fs::remove_all(run_dir + "/predictions", ec);
  fs::create_directories(run_dir + "/predictions");
}

// run.json: what the report needs besides the numbers (software, dataset summary).
nlohmann::json run_json(const Config& config, const StudyPlan& plan, const ExtractionStats& extraction,
                        double seconds) {
  nlohmann::json run;
  run["name"] = config.name;
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  run["finished"] = stamp;
  run["seconds"] = seconds;
  run["extraction_seconds"] = extraction.seconds;
  run["random_seeds"] = config.random_seeds.size();
  run["input_size"] = plan.prep.size;
  run["backbone_fingerprint"] = plan.backbone->fingerprint();  // predictions files are checked against it
  run["software"] = {{"kgain", KGAIN_VERSION}, {"libtorch", TORCH_VERSION}, {"plugins", nlohmann::json::array()}};
  const auto add_plugin = [&](PluginKind kind, const std::string& name) {
    const PluginEntry& e = plan.registry->find(kind, name);
    run["software"]["plugins"].push_back(
        {{"kind", to_string(kind)}, {"name", name}, {"version", e.info.version}, {"library", e.library_path}});
  };
  add_plugin(PluginKind::dataset, config.dataset.plugin);
  add_plugin(PluginKind::backbone, config.backbone.plugin);
  for (const auto& p : config.probes) add_plugin(PluginKind::probe, p.plugin);
  for (const auto& m : config.metrics) add_plugin(PluginKind::metric, m.plugin);
  for (const auto& m : config.estimators) add_plugin(PluginKind::feature_metric, m.plugin);
  run["dataset"] = {{"description", plan.dataset->description()},
                    {"images", plan.samples.size()},
                    {"split_strategy", plan.splits.strategy},
                    {"folds", plan.splits.folds.size()},
                    {"classes", nlohmann::json::array()}};
  for (std::size_t c = 0; c < plan.classes.size(); ++c) {
    std::int64_t images = 0;
    std::set<std::string> groups;
    for (const auto& s : plan.samples)
      if (s.label == static_cast<int>(c)) ++images, groups.insert(s.group);
    groups.erase("");
    run["dataset"]["classes"].push_back({{"name", plan.classes[c]}, {"images", images}, {"groups", groups.size()}});
  }
  run["dataset"]["warnings"] = plan.dataset->warnings();  // what the log said of the set as loaded
  run["dataset"]["bad_images"] = nlohmann::json::array();
  for (const auto& [index, reason] : extraction.bad_images)
    run["dataset"]["bad_images"].push_back(
        {{"path", plan.samples[static_cast<std::size_t>(index)].path}, {"reason", reason}});
  return run;
}

}  // namespace

// Every result file, then the report drawn from them.
void write_stage(const Config& config, const StudyPlan& plan, const ExtractionStats& extraction, const Scores& scores,
                 const Analysis& analysis, const std::string& dir, double seconds) {
  const std::vector<Evaluation>& evaluations = scores.evaluations;
  clear_predictions(dir);
  RunPredictions made_for;  // what kgain compare --paired checks the files against
  made_for.config_hash = hash_hex(config.resolved_toml);
  made_for.splits_hash = hash_hex(read_text_file(dir + "/splits.csv").value_or(""));
  made_for.backbone_fingerprint = plan.backbone->fingerprint();
  made_for.image_identities = plan.identities;
  for (std::size_t p = 0; config.save_predictions && p < evaluations.size(); ++p)
    write_probe_predictions(dir, p, plan.probes[p].name, evaluations[p], plan.variants, plan.tap_names, plan.splits,
                            static_cast<std::int64_t>(plan.classes.size()), made_for);
  const StudyLabels labels{config.dataset.name, config.backbone.name};
  write_transferability_csv(dir + "/transferability.csv", labels, scores.transferability);
  write_results_csv(dir + "/results.csv", labels, scores.rows);
  write_gain_csv(dir + "/gain.csv", labels, analysis.gain);
  write_gain_json(dir + "/gain.json", labels, analysis.gain, config.confidence, scores.transferability,
                  analysis.rank_agreement, config.metrics.front().name, analysis.source_transferability);
  write_file_atomically(dir + "/run.json", run_json(config, plan, extraction, seconds).dump(2) + "\n");
  write_report(dir);
}

}  // namespace kgain::core
