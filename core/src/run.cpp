#include "kgain/core/run.hpp"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <kgain/file_hash.hpp>

#include "kgain/core/build_info.hpp"
#include "kgain/core/image_identity.hpp"
#include "kgain/core/predictions_file.hpp"
#include "kgain/core/registry.hpp"
#include "kgain/core/report.hpp"
#include "kgain/core/results.hpp"
#include "kgain/core/transferability.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

// Sends the log to the run directory too, for as long as the run lasts.
class RunLog {
 public:
  explicit RunLog(const std::string& file) : previous_(spdlog::default_logger()) {
    auto sinks = previous_->sinks();
    auto file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
    file_sink->set_level(spdlog::level::debug);
    sinks.push_back(file_sink);
    auto logger = std::make_shared<spdlog::logger>("kgain", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::debug);
    logger->flush_on(spdlog::level::info);  // the log of a crashed run must hold its last steps
    for (auto& s : previous_->sinks()) s->set_level(previous_->level());
    spdlog::set_default_logger(logger);
  }
  ~RunLog() { spdlog::set_default_logger(previous_); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// An exclusive lock on a run directory for as long as a run writes into it, so that two runs
// never interleave their files (flock: released by the kernel when the process dies).
class RunDirLock {
 public:
  explicit RunDirLock(const std::string& dir) {
    const std::string path = dir + "/.kgain.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot create the lock file " + path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const std::string holder = read_file(path);
      ::close(fd_);
      throw std::runtime_error("another kgain run (" + (holder.empty() ? std::string("unknown process") : holder) + ") is writing into '" +
                               dir + "'; wait for it to finish, or choose another directory with --out");
    }
    char host[256] = "?";
    ::gethostname(host, sizeof host - 1);
    // Who holds it, for the message above; the lock holds even if this note cannot be written.
    const std::string me = "pid " + std::to_string(::getpid()) + " on " + host;
    if (::ftruncate(fd_, 0) == 0) (void)!::write(fd_, me.data(), me.size());
  }
  ~RunDirLock() { ::close(fd_); }
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

std::string run_dir_of(const Config& config, const RunOptions& options) {
  return options.out_dir.empty() ? "runs/" + config.name : options.out_dir;
}

// Checks that `dir` may take this run (a new or empty folder, or a run of the same
// measurement, or --replace); the caller holds the directory's lock. Nothing is written: the
// directory is claimed (config.resolved.toml) only once the plugins have accepted the config.
void check_run_dir(const std::string& dir, const Config& config, const RunOptions& options) {
  const std::string resolved = dir + "/config.resolved.toml";
  if (fs::exists(resolved)) {
    const std::string previous = read_file(resolved);
    if (previous == config.resolved_toml) {
      spdlog::info("'{}' holds a run of this config: finished features are reused, results are replaced", dir);
    } else if (same_measurement(previous, config.resolved_toml)) {
      spdlog::info("'{}' holds a run of the same dataset, backbone, features and variants: features are reused, results are replaced", dir);
    } else if (!options.replace_other) {
      throw std::runtime_error("the run directory '" + dir + "' holds a run of a different config (another dataset, backbone, features or "
                               "variants; see " + resolved + "); choose another directory with --out, or pass --replace to replace that run");
    }
    return;
  }
  if (options.replace_other) return;
  // The lock and the log are written before the run claims the directory (a failed run leaves them).
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != ".kgain.lock" && entry.path().filename() != "kgain.log")
      throw std::runtime_error("the run directory '" + dir + "' exists and is not a kgain run; choose another with --out");
}

// What every study needs of its images and classes; each violation would turn into a wrong
// score rather than an error further on.
void check_samples(const std::vector<Sample>& samples, const std::vector<std::string>& classes, const std::string& dataset) {
  if (classes.size() < 2)
    throw std::runtime_error(dataset + ": " + std::to_string(classes.size()) +
                             " class; a probe needs at least two classes to tell apart (check the dataset's classes or folders)");
  std::map<std::string, std::size_t> seen_class;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    if (classes[c].empty()) throw std::runtime_error(dataset + ": class " + std::to_string(c) + " has an empty name");
    if (!seen_class.emplace(classes[c], c).second)
      throw std::runtime_error(dataset + ": the class '" + classes[c] + "' is listed twice; each class name must be unique");
  }
  std::vector<std::int64_t> per_class(classes.size(), 0);
  std::map<std::string, std::size_t> seen_path;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    if (s.path.empty() || s.path.find('\0') != std::string::npos)
      throw std::runtime_error(dataset + ": image " + std::to_string(i) + " has an empty path or one with a NUL byte ('" +
                               s.path.substr(0, s.path.find('\0')) + "...')");
    if (s.label < 0 || s.label >= static_cast<int>(classes.size()))
      throw std::runtime_error(dataset + ": " + s.path + " has label " + std::to_string(s.label) + ", outside the " +
                               std::to_string(classes.size()) + " classes (a bug in the dataset plugin)");
    ++per_class[static_cast<std::size_t>(s.label)];
    if (const auto [it, fresh] = seen_path.emplace(s.path, i); !fresh)
      throw std::runtime_error(dataset + ": " + s.path + " is listed twice (images " + std::to_string(it->second) + " and " +
                               std::to_string(i) + "); a repeated image could land on both sides of a split and inflate every "
                               "score: remove the duplicate row");
  }
  for (std::size_t c = 0; c < classes.size(); ++c)
    if (per_class[c] == 0)
      throw std::runtime_error(dataset + ": the class '" + classes[c] + "' has no images (a name in `classes` that no image carries, "
                               "or a class whose images are all outside the study's split)");
}

// Every fold must have images on both sides and at least two classes to train on; a fold
// without them would yield a score of nothing.
void check_folds(const SplitPlan& plan, const std::vector<std::int64_t>& labels, const std::vector<std::string>& classes) {
  for (std::size_t f = 0; f < plan.folds.size(); ++f) {
    const auto& fold = plan.folds[f];
    std::set<std::int64_t> train_classes;
    for (auto i : fold.train) train_classes.insert(labels[static_cast<std::size_t>(i)]);
    const std::string name = "fold " + std::to_string(f);
    if (fold.train.empty() || fold.test.empty())
      throw std::runtime_error(name + " has " + std::to_string(fold.train.size()) + " training and " + std::to_string(fold.test.size()) +
                               " test images; every fold needs both (too few images or groups for the folds, or every image of one "
                               "side was left out as unreadable)");
    if (train_classes.size() < 2)
      throw std::runtime_error(name + ": its training images are all of one class; a probe cannot learn from them (more images or "
                               "groups per class, or fewer folds)");
    for (std::size_t c = 0; c < classes.size(); ++c)
      if (!train_classes.count(static_cast<std::int64_t>(c)))
        spdlog::warn("{}: no training image of class '{}': the probe cannot predict it there", name, classes[c]);
  }
}

// Keeps only the images some fold uses, renumbering the folds' indices.
void drop_unused(std::vector<Sample>& samples, SplitPlan& plan) {
  std::vector<std::int64_t> new_index(samples.size(), -1);
  for (const auto& fold : plan.folds) {
    for (auto i : fold.train) new_index[i] = 0;
    for (auto i : fold.test) new_index[i] = 0;
  }
  std::vector<Sample> kept;
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (new_index[i] == 0) new_index[i] = static_cast<std::int64_t>(kept.size()), kept.push_back(std::move(samples[i]));
  samples = std::move(kept);
  for (auto& fold : plan.folds) {
    for (auto& i : fold.train) i = new_index[i];
    for (auto& i : fold.test) i = new_index[i];
  }
}

// predictions/<index>-<name>.kgpred for probe `index`; the name is kept to safe characters (the
// file's header holds the real one).
void write_probe_predictions(const std::string& run_dir, std::size_t index, const std::string& probe, const Evaluation& evaluation,
                             const std::vector<Variant>& variants, const std::vector<std::string>& taps, const SplitPlan& splits,
                             std::int64_t num_classes) {
  RunPredictions p;
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

}  // namespace

void set_threads(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

RunSummary run_study(const Config& config, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  RunSummary summary;
  summary.run_dir = run_dir_of(config, options);
  fs::create_directories(summary.run_dir);
  const RunDirLock lock(summary.run_dir);
  check_run_dir(summary.run_dir, config, options);
  RunLog log(summary.run_dir + "/kgain.log");
  if (const int stale = remove_stale_temporaries(summary.run_dir); stale > 0)
    spdlog::info("removed {} temporary file(s) that an interrupted run left behind", stale);
  spdlog::info("kgain {} run '{}' from {} into {}", KGAIN_VERSION, config.name, config.file, summary.run_dir);
  set_threads(config.threads);
  spdlog::info("LibTorch {} with {} threads", TORCH_VERSION, at::get_num_threads());

  const Registry registry = load_registry(config.plugin_paths);
  auto dataset = registry.create<Dataset>(config.dataset.plugin, config.dataset.options);
  check_unread_options(config.dataset, "dataset");
  for (const auto& warning : dataset->warnings()) spdlog::warn("dataset: {}", warning);
  auto backbone = registry.create<Backbone>(config.backbone.plugin, config.backbone.options);
  check_unread_options(config.backbone, "backbone");
  if (config.recalibrate_batch_norm && !backbone->can_recalibrate_batch_norm())
    throw std::runtime_error(config.file + ": [variants] recalibrate_batch_norm = true, but backbone '" + config.backbone.plugin +
                             "' cannot re-estimate batch-norm statistics; use the native backbone (plugin = \"native\") or remove the key");
  for (const auto& p : config.probes) {
    registry.create<Probe>(p.plugin, p.options);  // validates the options now, not after extraction
    check_unread_options(p, "probe");
  }
  std::vector<NamedMetric> metrics;
  for (const auto& m : config.metrics) {
    metrics.push_back({m.name, registry.create<Metric>(m.plugin, m.options)});
    check_unread_options(m, "metric");
  }

  std::vector<NamedFeatureMetric> feature_metrics;
  for (const auto& m : config.feature_metrics) {
    feature_metrics.push_back({m.name, registry.create<FeatureMetric>(m.plugin, m.options)});
    check_unread_options(m, "feature metric");
  }

  // The images and their splits.
  const auto classes = dataset->class_names();
  auto samples = dataset->samples();
  check_samples(samples, classes, dataset->description());
  samples = limit_per_class(samples, config.limit_per_class, config.split_seed);
  SplitPlan splits = make_repeated_splits(samples, static_cast<int>(classes.size()), config.split_strategy, config.folds, config.split_seed,
                                          config.split_repeats);
  drop_unused(samples, splits);  // e.g. PCam's valid split: never decoded nor extracted
  check_samples(samples, classes, dataset->description());
  summary.images = static_cast<std::int64_t>(samples.size());
  summary.split_strategy = splits.strategy;
  std::vector<std::int64_t> labels;
  for (const auto& s : samples) labels.push_back(s.label);
  for (std::size_t f = 0; f < splits.folds.size(); ++f)
    if (const auto leaks = leaking_groups(samples, splits.folds[f]); !leaks.empty())
      throw std::runtime_error("fold " + std::to_string(f) + " puts group '" + leaks.front() + "' (and " + std::to_string(leaks.size() - 1) +
                               " more) on both sides; the dataset's split column mixes groups — use [splits] strategy = \"group_kfold\"");
  check_folds(splits, labels, classes);
  spdlog::info("dataset: {} — {} images, {} classes, split: {} ({} fold{})", dataset->description(), samples.size(), classes.size(),
               splits.strategy, splits.folds.size(), splits.folds.size() == 1 ? "" : "s");

  // The taps and their cost.
  Preprocessing prep;
  prep.size = config.input_size > 0 ? config.input_size : backbone->native_input_size();
  prep.resize = config.resize;
  prep.pixel_source = dataset.get();
  if (config.stain_normalization != "none") {
    prep.stain = std::make_shared<const StainReference>(make_stain_reference(config.stain_normalization, config.stain_reference));
    spdlog::info("stain normalization: {} to {}", config.stain_normalization, config.stain_reference);
  }
  const auto taps = backbone->inspect(prep.size);
  std::vector<std::string> tap_names;
  for (const auto& t : taps) tap_names.push_back(t.name);
  spdlog::info("backbone: {} — {} taps at {} px", backbone->description(), taps.size(), prep.size);

  // The variants: pretrained (when the backbone has weights) and one random per seed.
  std::vector<Variant> variants;
  if (backbone->has_pretrained_weights()) variants.push_back(Variant{Variant::Kind::pretrained, 0});
  else spdlog::warn("the backbone has no pretrained weights: scoring random variants only, so there is no gain to measure");
  for (auto seed : config.random_seeds) variants.push_back(Variant{Variant::Kind::random, seed});
  if (config.recalibrate_batch_norm) {
    // Training images only (the dataset's own train split, else every image: labels are not used,
    // and one calibrated network serves every fold), drawn with the split seed.
    std::vector<std::int64_t> pool;
    for (std::size_t i = 0; i < samples.size(); ++i)
      if (splits.strategy != "dataset" || samples[i].split == "train") pool.push_back(static_cast<std::int64_t>(i));
    seeded_shuffle(pool, config.split_seed);
    if (static_cast<std::int64_t>(pool.size()) > config.calibration_images) pool.resize(config.calibration_images);
    std::sort(pool.begin(), pool.end());
    const at::Tensor calibration = decode_calibration_images(samples, pool, prep, config.skip_bad_images);
    for (auto& v : variants)
      if (v.kind == Variant::Kind::random) v.batch_norm_calibration = calibration;
    spdlog::info("random variants: batch-norm statistics re-estimated on {} training images", calibration.size(0));
  }
  // Everything was accepted: the directory is now this run's (a config that fails before
  // this point leaves nothing behind, so the corrected config is not refused).
  write_file_atomically(summary.run_dir + "/config.resolved.toml", config.resolved_toml);
  write_splits_csv(summary.run_dir + "/splits.csv", samples, classes, splits);
  write_taps_csv(summary.run_dir + "/taps.csv", taps);

  // Features: the cache key is every setting the numbers depend on; each chunk is keyed on the
  // content of its images besides (image_identity.hpp).
  std::ostringstream key;
  key << "kgain feature cache v2\nbackbone " << backbone->fingerprint() << "\ntaps";
  for (const auto& t : tap_names) key << ' ' << t;
  key << "\ninput_size " << prep.size << "\nresize " << prep.resize << "\nstain " << config.stain_normalization << ' '
      << (config.stain_reference.empty() ? "-" : file_fingerprint(config.stain_reference)) << "\npooling " << to_string(config.pooling) << "\nchunk "
      << chunk_images << "\nbatch_norm_calibration "
      << (config.recalibrate_batch_norm ? std::to_string(config.calibration_images) + " seed " + std::to_string(config.split_seed) : "none")
      << "\nimages " << samples.size() << '\n';
  for (const auto& s : samples) key << s.path << '\n';
  const FeatureCache cache(summary.run_dir + "/cache", key.str());
  const int decode_threads =
      config.decode_threads > 0 ? config.decode_threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 4);
  const std::vector<std::uint64_t> identities = image_identities(samples, prep.pixel_source, std::max(2, decode_threads));
  const ExtractionInput input{samples, identities, prep, config.batch_size, config.skip_bad_images, decode_threads};
  const auto features = extract_features(*backbone, variants, config.pooling, input, cache, summary.extraction);
  // Skipped images leave every fold (the rest of the fold is unchanged) and the estimators.
  std::set<std::int64_t> bad;
  for (const auto& b : summary.extraction.bad_images) bad.insert(b.first);
  std::vector<std::int64_t> good_rows, good_labels;
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (!bad.count(static_cast<std::int64_t>(i))) good_rows.push_back(static_cast<std::int64_t>(i)), good_labels.push_back(labels[i]);
  const at::Tensor good_index = at::tensor(good_rows, at::kLong);
  if (!bad.empty()) {
    for (auto& fold : splits.folds)
      for (auto* side : {&fold.train, &fold.test}) side->erase(std::remove_if(side->begin(), side->end(), [&](std::int64_t i) { return bad.count(i) > 0; }), side->end());
    spdlog::warn("{} image(s) could not be decoded and were left out (on_bad_image = \"skip\"); see run.json", bad.size());
    write_splits_csv(summary.run_dir + "/splits.csv", samples, classes, splits);  // they show as "unused"
  }
  check_folds(splits, labels, classes);
  spdlog::info("features ready: {} images decoded, {} forwarded, {} chunks from the cache, {} computed ({:.1f} s)",
               summary.extraction.images_decoded, summary.extraction.images_forwarded, summary.extraction.chunks_reused,
               summary.extraction.chunks_extracted, summary.extraction.seconds);

  // Probes, scores, gain.
  GainSettings gain_settings;
  gain_settings.bootstrap = config.bootstrap;
  gain_settings.confidence = config.confidence;
  gain_settings.seed = config.analysis_seed;
  gain_settings.sweet_spot_epsilon = config.sweet_spot_epsilon;
  gain_settings.threads = at::get_num_threads();
  clear_predictions(summary.run_dir);
  for (std::size_t p = 0; p < config.probes.size(); ++p) {
    const PluginSection& section = config.probes[p];
    const auto make_probe = [&] { return registry.create<Probe>(section.plugin, section.options); };
    const Evaluation evaluation = evaluate(features, variants, tap_names, labels, static_cast<std::int64_t>(classes.size()), splits,
                                          section.name, make_probe, config.probe_seeds[p], metrics,
                                          at::get_num_threads());
    summary.scores.insert(summary.scores.end(), evaluation.rows.begin(), evaluation.rows.end());
    if (config.save_predictions)
      write_probe_predictions(summary.run_dir, p, section.name, evaluation, variants, tap_names, splits, static_cast<std::int64_t>(classes.size()));
    const auto gain = compute_gain(evaluation, variants, taps, metrics, config.pooling == Pooling::avgmax ? 2 : 1, gain_settings);
    summary.gain.insert(summary.gain.end(), gain.begin(), gain.end());
  }
  const bool has_pretrained = backbone->has_pretrained_weights();  // the estimators score pretrained features
  if (has_pretrained && (!feature_metrics.empty() || config.cka)) {
    std::vector<std::vector<at::Tensor>> usable = features;
    if (!bad.empty())
      for (auto& per_tap : usable)
        for (auto& x : per_tap) x = x.index_select(0, good_index);
    summary.transferability = compute_transferability(usable, variants, tap_names, good_labels, static_cast<std::int64_t>(classes.size()),
                                                      feature_metrics, config.cka);
    // Which estimator orders the taps as the first probe does (first metric, pretrained scores)?
    for (const auto& fm : feature_metrics) {
      std::vector<double> estimate, probe;
      for (const auto& r : summary.transferability)
        if (r.metric == fm.name) estimate.push_back(r.pretrained);
      for (const auto& g : summary.gain)
        if (g.probe == config.probes.front().name && g.metric == config.metrics.front().name) probe.push_back(g.pretrained);
      summary.rank_agreement.push_back({fm.name, spearman(estimate, probe)});
      spdlog::info("transferability: {} ranks the taps with Spearman {:.3f} against the probe's {}", fm.name,
                   summary.rank_agreement.back().second, config.metrics.front().name);
    }
  }
  if (has_pretrained && config.source_transferability) {
    const at::Tensor probs = extract_source_predictions(*backbone, input, cache);
    if (!probs.defined()) {
      spdlog::warn("[transferability] source = true, but the backbone has no classifier head: LEEP and NCE are not computed");
    } else {
      const at::Tensor p = probs.index_select(0, good_index);
      const auto k = static_cast<std::int64_t>(classes.size());
      summary.source_transferability = {{"leep", leep(p, good_labels, k)}, {"nce", nce(p, good_labels, k)}};
      spdlog::info("source transferability: LEEP {:.4f}, NCE {:.4f}", summary.source_transferability[0].second,
                   summary.source_transferability[1].second);
    }
  }
  const StudyLabels study{config.dataset.name, config.backbone.name};
  write_transferability_csv(summary.run_dir + "/transferability.csv", study, summary.transferability);
  write_results_csv(summary.run_dir + "/results.csv", study, summary.scores);
  write_gain_csv(summary.run_dir + "/gain.csv", study, summary.gain);
  write_gain_json(summary.run_dir + "/gain.json", study, summary.gain, config.confidence, summary.transferability,
                  summary.rank_agreement, config.metrics.front().name, summary.source_transferability);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // run.json: what the report needs besides the numbers (software, dataset summary).
  nlohmann::json run;
  run["name"] = config.name;
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  run["finished"] = stamp;
  run["seconds"] = summary.seconds;
  run["extraction_seconds"] = summary.extraction.seconds;
  run["random_seeds"] = config.random_seeds.size();
  run["input_size"] = prep.size;
  run["software"] = {{"kgain", KGAIN_VERSION}, {"libtorch", TORCH_VERSION}, {"plugins", nlohmann::json::array()}};
  const auto add_plugin = [&](PluginKind kind, const std::string& name) {
    const PluginEntry& e = registry.find(kind, name);
    run["software"]["plugins"].push_back({{"kind", to_string(kind)}, {"name", name}, {"version", e.info.version}, {"library", e.library_path}});
  };
  add_plugin(PluginKind::dataset, config.dataset.plugin);
  add_plugin(PluginKind::backbone, config.backbone.plugin);
  for (const auto& p : config.probes) add_plugin(PluginKind::probe, p.plugin);
  for (const auto& m : config.metrics) add_plugin(PluginKind::metric, m.plugin);
  for (const auto& m : config.feature_metrics) add_plugin(PluginKind::feature_metric, m.plugin);
  run["dataset"] = {{"description", dataset->description()}, {"images", samples.size()}, {"split_strategy", splits.strategy},
                    {"folds", splits.folds.size()}, {"classes", nlohmann::json::array()}};
  for (std::size_t c = 0; c < classes.size(); ++c) {
    std::int64_t images = 0;
    std::set<std::string> groups;
    for (const auto& s : samples)
      if (s.label == static_cast<int>(c)) ++images, groups.insert(s.group);
    groups.erase("");
    run["dataset"]["classes"].push_back({{"name", classes[c]}, {"images", images}, {"groups", groups.size()}});
  }
  run["dataset"]["bad_images"] = nlohmann::json::array();
  for (const auto& [index, reason] : summary.extraction.bad_images)
    run["dataset"]["bad_images"].push_back({{"path", samples[index].path}, {"reason", reason}});
  write_file_atomically(summary.run_dir + "/run.json", run.dump(2) + "\n");
  write_report(summary.run_dir);
  spdlog::info("done in {:.1f} s: {}/report.html, gain.csv, results.csv", summary.seconds, summary.run_dir);
  return summary;
}

}  // namespace kgain::core
