#include "study/run.hpp"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <algorithm>
#include <numeric>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>
#include <memory>

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

#include "runtime/allocator.hpp"
#include "runtime/build_info.hpp"
#include "runtime/machine.hpp"
#include "cluster/cluster.hpp"
#include "extract/feature_store.hpp"
#include "images/image_identity.hpp"
#include "write/predictions_file.hpp"
#include "plan/registry.hpp"
#include "write/report.hpp"
#include "write/results.hpp"
#include "analyse/transferability.hpp"

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
      throw std::runtime_error("another kgain run (" + (holder.empty() ? std::string("unknown process") : holder) +
                               ") is writing into '" + dir +
                               "'; wait for it to finish, or choose another directory with --out");
    }
    // Who holds it, for the message above; the lock holds even if this note cannot be written.
    const std::string me = "pid " + std::to_string(::getpid()) + " on " + host_name();
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
      spdlog::info(
          "'{}' holds a run of the same dataset, backbone, features and variants: features are reused, results are "
          "replaced",
          dir);
    } else if (!options.replace_other) {
      throw std::runtime_error("the run directory '" + dir +
                               "' holds a run of a different config (another dataset, backbone, features or "
                               "variants; see " +
                               resolved +
                               "); choose another directory with --out, or pass --replace to replace that run");
    }
    return;
  }
  if (options.replace_other) return;
  // The lock and the log are written before the run claims the directory (a failed run leaves them).
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != ".kgain.lock" && entry.path().filename() != "kgain.log")
      throw std::runtime_error("the run directory '" + dir +
                               "' exists and is not a kgain run; choose another with --out");
}

// What every study needs of its images and classes; each violation would turn into a wrong
// score rather than an error further on.
void check_samples(const std::vector<Sample>& samples, const std::vector<std::string>& classes,
                   const std::string& dataset) {
  if (classes.size() < 2)
    throw std::runtime_error(
        dataset + ": " + std::to_string(classes.size()) +
        " class; a probe needs at least two classes to tell apart (check the dataset's classes or folders)");
  std::map<std::string, std::size_t> seen_class;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    if (classes[c].empty()) throw std::runtime_error(dataset + ": class " + std::to_string(c) + " has an empty name");
    if (!seen_class.emplace(classes[c], c).second)
      throw std::runtime_error(dataset + ": the class '" + classes[c] +
                               "' is listed twice; each class name must be unique");
  }
  std::vector<std::int64_t> per_class(classes.size(), 0);
  std::map<std::string, std::size_t> seen_path;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    if (s.path.empty() || s.path.find('\0') != std::string::npos)
      throw std::runtime_error(dataset + ": image " + std::to_string(i) +
                               " has an empty path or one with a NUL byte ('" + s.path.substr(0, s.path.find('\0')) +
                               "...')");
    if (s.label < 0 || s.label >= static_cast<int>(classes.size()))
      throw std::runtime_error(dataset + ": " + s.path + " has label " + std::to_string(s.label) + ", outside the " +
                               std::to_string(classes.size()) + " classes (a bug in the dataset plugin)");
    ++per_class[static_cast<std::size_t>(s.label)];
    if (const auto [it, fresh] = seen_path.emplace(s.path, i); !fresh)
      throw std::runtime_error(dataset + ": " + s.path + " is listed twice (images " + std::to_string(it->second) +
                               " and " + std::to_string(i) +
                               "); a repeated image could land on both sides of a split and inflate every "
                               "score: remove the duplicate row");
  }
  for (std::size_t c = 0; c < classes.size(); ++c)
    if (per_class[c] == 0)
      throw std::runtime_error(dataset + ": the class '" + classes[c] +
                               "' has no images (a name in `classes` that no image carries, "
                               "or a class whose images are all outside the study's split)");
}

// Every fold must have images on both sides and at least two classes to train on; a fold
// without them would yield a score of nothing.
void check_folds(const SplitPlan& plan, const std::vector<std::int64_t>& labels,
                 const std::vector<std::string>& classes) {
  for (std::size_t f = 0; f < plan.folds.size(); ++f) {
    const auto& fold = plan.folds[f];
    std::set<std::int64_t> train_classes;
    for (auto i : fold.train) train_classes.insert(labels[static_cast<std::size_t>(i)]);
    const std::string name = "fold " + std::to_string(f);
    if (fold.train.empty() || fold.test.empty())
      throw std::runtime_error(
          name + " has " + std::to_string(fold.train.size()) + " training and " + std::to_string(fold.test.size()) +
          " test images; every fold needs both (too few images or groups for the folds, or every image of one "
          "side was left out as unreadable)");
    if (train_classes.size() < 2)
      throw std::runtime_error(
          name +
          ": its training images are all of one class; a probe cannot learn from them (more images or "
          "groups per class, or fewer folds)");
    // A fold that tests only classes it never trains on scores 0 whatever the features: every
    // tap and variant alike, a gain of 0 that looks like a finding.
    if (std::none_of(fold.test.begin(), fold.test.end(),
                     [&](std::int64_t i) { return train_classes.count(labels[static_cast<std::size_t>(i)]) > 0; }))
      throw std::runtime_error(name + ": its " + std::to_string(fold.test.size()) +
                               " test image(s) are all of classes it has no training image of, so every probe scores "
                               "0 there; use more images per class or fewer [splits] folds");
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

}  // namespace

void set_threads(int threads) {
  const int n = threads > 0 ? threads : hardware_threads();
  at::set_num_threads(n);
}

namespace {

// Everything a study is made of, once the config has been accepted.
struct Study {
  Registry registry;
  std::shared_ptr<Dataset> dataset;
  std::shared_ptr<Backbone> backbone;
  std::vector<NamedMetric> metrics;
  std::vector<NamedFeatureMetric> feature_metrics;
  std::vector<ProbeSpec> probes;
  std::vector<std::string> classes;
  std::vector<Sample> samples;
  std::vector<std::int64_t> labels;
  SplitPlan splits;
  Preprocessing prep;
  std::vector<TapInfo> taps;
  std::vector<std::string> tap_names;
  std::vector<Variant> variants;
  std::vector<std::uint64_t> identities;   // image_identity.hpp
  std::uint64_t calibration_identity = 0;  // of the batch-norm calibration images, when used
};

// The plugins, each created (so its options are checked) before any image is read.
void load_plugins(const Config& config, Study& study) {
  study.registry = load_registry(config.plugin_paths);
  const Registry& registry = study.registry;
  study.dataset = registry.create<Dataset>(config.dataset);
  for (const auto& warning : study.dataset->warnings()) spdlog::warn("dataset: {}", warning);
  study.backbone = registry.create<Backbone>(config.backbone);
  if (config.recalibrate_batch_norm && !study.backbone->can_recalibrate_batch_norm())
    throw std::runtime_error(config.file + ": [variants] recalibrate_batch_norm = true, but backbone '" +
                             config.backbone.plugin +
                             "' cannot re-estimate batch-norm statistics; use a backbone that can (the bundled native "
                             "backbone can) or remove the key");
  for (std::size_t p = 0; p < config.probes.size(); ++p) {
    const PluginSection& section = config.probes[p];
    const auto checked = registry.create<Probe>(section);  // validates the options now, not after extraction
    study.probes.push_back({section.name,
                            [&registry, &section] { return registry.create<Probe>(section.plugin, section.options); },
                            config.probe_seeds[p], checked->fits_folds_together()});
  }
  for (const auto& m : config.metrics) study.metrics.push_back({m.name, registry.create<Metric>(m)});
  for (const auto& m : config.feature_metrics)
    study.feature_metrics.push_back({m.name, registry.create<FeatureMetric>(m)});
}

// The images and their folds, checked so that no fold can yield a score of nothing.
void plan_images(const Config& config, Study& study, RunSummary& summary) {
  study.classes = study.dataset->class_names();
  auto& samples = study.samples;
  samples = study.dataset->samples();
  check_samples(samples, study.classes, study.dataset->description());
  samples = limit_per_class(samples, config.limit_per_class, config.split_seed);
  study.splits = make_repeated_splits(samples, static_cast<int>(study.classes.size()), config.split_strategy,
                                      config.folds, config.split_seed, config.split_repeats);
  drop_unused(samples, study.splits);  // e.g. PCam's valid split: never decoded nor extracted
  check_samples(samples, study.classes, study.dataset->description());
  summary.images = static_cast<std::int64_t>(samples.size());
  summary.split_strategy = study.splits.strategy;
  for (const auto& s : samples) study.labels.push_back(s.label);
  for (std::size_t f = 0; f < study.splits.folds.size(); ++f)
    if (const auto leaks = leaking_groups(samples, study.splits.folds[f]); !leaks.empty())
      throw std::runtime_error(
          "fold " + std::to_string(f) + " puts group '" + leaks.front() + "' (and " + std::to_string(leaks.size() - 1) +
          " more) on both sides; the dataset's split column mixes groups — use [splits] strategy = \"group_kfold\"");
  check_folds(study.splits, study.labels, study.classes);
  spdlog::info("dataset: {} — {} images, {} classes, split: {} ({} fold{})", study.dataset->description(),
               samples.size(), study.classes.size(), study.splits.strategy, study.splits.folds.size(),
               study.splits.folds.size() == 1 ? "" : "s");
}

// The taps, their cost, and the variants (pretrained, and one random per seed).
void plan_network(const Config& config, Study& study) {
  Preprocessing& prep = study.prep;
  prep.size = config.input_size > 0 ? config.input_size : study.backbone->native_input_size();
  prep.resize = config.resize;
  prep.pixel_source = study.dataset.get();
  if (config.stain_normalization != "none") {
    prep.stain = std::make_shared<const StainReference>(
        make_stain_reference(config.stain_normalization, config.stain_reference));
    spdlog::info("stain normalization: {} to {}", config.stain_normalization, config.stain_reference);
  }
  study.taps = study.backbone->inspect(prep.size);
  for (const auto& t : study.taps) {
    study.tap_names.push_back(t.name);
    if (!pooling_fits(config.pooling, t.form))
      throw std::runtime_error(config.file + ": [features] pooling = \"" + to_string(config.pooling) +
                               "\" does not fit tap '" + t.name + "', " +
                               (t.form == TapForm::tokens
                                    ? "a token sequence (a transformer): use \"cls\", \"mean\" or \"cls_mean\""
                                    : "a feature map: use \"avg\", \"max\" or \"avgmax\""));
  }
  spdlog::info("backbone: {} — {} taps at {} px", study.backbone->description(), study.taps.size(), prep.size);
  if (study.backbone->has_pretrained_weights())
    study.variants.push_back(Variant{Variant::Kind::pretrained, 0});
  else
    spdlog::warn(
        "the backbone has no pretrained weights: scoring random variants only, so there is no gain to measure");
  for (auto seed : config.random_seeds) study.variants.push_back(Variant{Variant::Kind::random, seed});
}

// Two files with the same bytes are one image: if a fold trains on one and tests on the other,
// the test is on a training image and every score is inflated (as with a row listed twice).
// Images left out (undecodable) are in no fold, so they never count.
void check_duplicate_content(const Study& study) {
  std::vector<char> used(study.samples.size(), 0);
  for (const auto& fold : study.splits.folds)
    for (const auto* side : {&fold.train, &fold.test})
      for (auto i : *side) used[static_cast<std::size_t>(i)] = 1;
  std::unordered_map<std::uint64_t, std::size_t> first;
  std::vector<std::pair<std::size_t, std::size_t>> duplicates;
  for (std::size_t i = 0; i < study.identities.size(); ++i)
    if (used[i])
      if (const auto [it, fresh] = first.emplace(study.identities[i], i); !fresh)
        duplicates.emplace_back(it->second, i);
  if (duplicates.empty()) return;
  for (std::size_t f = 0; f < study.splits.folds.size(); ++f) {
    std::vector<char> side(study.samples.size(), 0);
    for (auto i : study.splits.folds[f].train) side[static_cast<std::size_t>(i)] = 'r';
    for (auto i : study.splits.folds[f].test) side[static_cast<std::size_t>(i)] = 'e';
    for (const auto& [a, b] : duplicates)
      if (side[a] && side[b] && side[a] != side[b])
        throw std::runtime_error(study.samples[a].path + " and " + study.samples[b].path +
                                 " have the same content, and fold " + std::to_string(f) +
                                 " trains on one and tests on the other, which would inflate every score (" +
                                 std::to_string(duplicates.size()) +
                                 " duplicate pair(s) in all): remove the duplicates, or give each pair the same group");
  }
  spdlog::warn("{} pair(s) of images have the same content (first: {} and {}); no fold puts a pair on both sides",
               duplicates.size(), study.samples[duplicates.front().first].path,
               study.samples[duplicates.front().second].path);
}

int decode_threads(const Config& config) {
  return config.decode_threads > 0 ? config.decode_threads : std::max(1, hardware_threads() / 4);
}

// Random variants re-estimate their batch-norm statistics on training images (the dataset's own
// train split, else every image: labels are not used, and one calibrated network serves every
// fold), drawn with the split seed.
void calibrate_batch_norm(const Config& config, Study& study) {
  std::vector<std::int64_t> pool;
  for (std::size_t i = 0; i < study.samples.size(); ++i)
    if (study.splits.strategy != "dataset" || study.samples[i].split == "train")
      pool.push_back(static_cast<std::int64_t>(i));
  seeded_shuffle(pool, config.split_seed);
  if (static_cast<std::int64_t>(pool.size()) > config.calibration_images) pool.resize(config.calibration_images);
  std::sort(pool.begin(), pool.end());
  const at::Tensor calibration = decode_calibration_images(study.samples, pool, study.prep, config.skip_bad_images);
  for (auto& v : study.variants)
    if (v.kind == Variant::Kind::random) v.batch_norm_calibration = calibration;
  // The calibrated networks depend on these images: the feature store keys on their content.
  Hash64 h(pool.size());
  for (auto i : pool) h.update_u64(study.identities[static_cast<std::size_t>(i)]);
  study.calibration_identity = h.digest();
  spdlog::info("random variants: batch-norm statistics re-estimated on {} training images", calibration.size(0));
}

// The feature store's folder: [run] feature_store, else $KGAIN_FEATURE_STORE, else RUN_DIR/cache.
std::string feature_store_dir(const Config& config, const std::string& run_dir) {
  if (!config.feature_store.empty()) return config.feature_store;
  if (const char* env = std::getenv("KGAIN_FEATURE_STORE"); env && *env) return env;
  return run_dir + "/cache";
}

// Everything a variant's features depend on besides the image (feature_store.hpp).
std::string feature_space_key(const Config& config, const Study& study, const std::string& variant) {
  std::ostringstream key;
  key << "kgain features v3\nbackbone " << study.backbone->fingerprint() << "\ntaps";
  for (const auto& t : study.tap_names) key << ' ' << t;
  key << "\ninput_size " << study.prep.size << "\nresize " << study.prep.resize << "\nstain "
      << config.stain_normalization << ' '
      << (config.stain_reference.empty() ? "-" : file_fingerprint(config.stain_reference)) << "\npooling "
      << to_string(config.pooling) << "\nvariant " << variant;
  if (variant.rfind("random-", 0) == 0)
    key << "\nbatch_norm_calibration "
        << (config.recalibrate_batch_norm ? std::to_string(study.calibration_identity) : "none");
  return key.str();
}

std::vector<FeatureSpace> open_feature_spaces(const Config& config, const Study& study, const std::string& store) {
  const StoragePrecision precision =
      config.storage == "float16" ? StoragePrecision::float16 : StoragePrecision::float32;
  std::vector<FeatureSpace> spaces;
  for (const auto& v : study.variants)
    spaces.emplace_back(store, feature_space_key(config, study, v.name()), precision);
  return spaces;
}

ExtractionInput extraction_input(const Config& config, const Study& study) {
  return ExtractionInput{study.samples,     study.identities,       study.prep,
                         config.batch_size, config.skip_bad_images, decode_threads(config)};
}

// Bytes between the ranks of one job (trusted: the same build wrote them a moment ago).
class Packer {
 public:
  void u64(std::uint64_t v) { bytes_.append(reinterpret_cast<const char*>(&v), 8); }
  void f64(double v) { bytes_.append(reinterpret_cast<const char*>(&v), 8); }
  void doubles(const std::vector<double>& v) { bytes_.append(reinterpret_cast<const char*>(v.data()), 8 * v.size()); }
  void text(const std::string& t) { u64(t.size()), bytes_ += t; }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class Unpacker {
 public:
  explicit Unpacker(const std::string& bytes) : bytes_(bytes) {}
  std::uint64_t u64() { return take<std::uint64_t>(); }
  double f64() { return take<double>(); }
  void doubles(std::vector<double>& v) {
    need(8 * v.size());
    std::memcpy(v.data(), bytes_.data() + at_, 8 * v.size()), at_ += 8 * v.size();
  }
  std::string text() {
    const std::uint64_t n = u64();
    need(n);
    std::string t = bytes_.substr(at_, n);
    at_ += n;
    return t;
  }

 private:
  template <class T>
  T take() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  void need(std::size_t n) const {
    if (bytes_.size() - at_ < n)
      throw std::runtime_error("a rank sent root a message cut short (a kgain of another version on that node?)");
  }
  const std::string& bytes_;
  std::size_t at_ = 0;
};

// Root adds up what the ranks extracted; every rank learns every image that could not be decoded
// (another rank's bad image has no features for this rank to read).
void merge_extraction_stats(ExtractionStats& stats) {
  const Cluster& cluster = Cluster::get();
  Packer out;
  out.u64(static_cast<std::uint64_t>(stats.images_decoded)),
      out.u64(static_cast<std::uint64_t>(stats.images_forwarded));
  out.u64(static_cast<std::uint64_t>(stats.segments_written)), out.u64(stats.bad_images.size());
  for (const auto& [index, reason] : stats.bad_images) out.u64(static_cast<std::uint64_t>(index)), out.text(reason);
  const auto all = cluster.gather(out.bytes());
  Packer merged;
  if (cluster.root()) {
    stats.bad_images.clear();
    stats.images_decoded = stats.images_forwarded = stats.segments_written = 0;
    for (const auto& bytes : all) {
      Unpacker in(bytes);
      stats.images_decoded += static_cast<std::int64_t>(in.u64());
      stats.images_forwarded += static_cast<std::int64_t>(in.u64());
      stats.segments_written += static_cast<std::int64_t>(in.u64());
      for (std::uint64_t n = in.u64(); n > 0; --n) {
        const auto index = static_cast<std::int64_t>(in.u64());
        stats.bad_images.emplace_back(index, in.text());
      }
    }
    std::sort(stats.bad_images.begin(), stats.bad_images.end());
    merged.u64(stats.bad_images.size());
    for (const auto& [index, reason] : stats.bad_images)
      merged.u64(static_cast<std::uint64_t>(index)), merged.text(reason);
  }
  std::string bad = merged.bytes();
  cluster.broadcast(bad);
  if (cluster.root()) return;
  Unpacker in(bad);
  stats.bad_images.clear();
  for (std::uint64_t n = in.u64(); n > 0; --n) {
    const auto index = static_cast<std::int64_t>(in.u64());
    stats.bad_images.emplace_back(index, in.text());
  }
}

// Features of every variant into the store; images that could not be decoded leave every fold.
void extract_stage(const Config& config, Study& study, std::vector<FeatureSpace>& spaces, const std::string& store,
                   RunSummary& summary) {
  const Cluster& cluster = Cluster::get();
  ExtractionInput input = extraction_input(config, study);
  input.share_rank = cluster.rank();
  input.share_count = cluster.size();
  if (const char* kill = std::getenv("KGAIN_TEST_KILL_RANK");
      kill && std::atoi(kill) == cluster.rank() && std::strchr(kill, ':'))
    input.die_after_segments = std::atoll(std::strchr(kill, ':') + 1);
  cluster.together(
      [&] { extract_features(*study.backbone, study.variants, config.pooling, input, spaces, summary.extraction); });
  return_free_memory();  // the networks' activations are not needed again (allocator.hpp)
  if (cluster.distributed()) {
    merge_extraction_stats(summary.extraction);
    cluster.barrier();
    spaces = open_feature_spaces(config, study, store);  // every rank's segments, for the taps each rank evaluates
  }
  const auto& bad_images = summary.extraction.bad_images;
  if (!bad_images.empty()) {
    std::set<std::int64_t> bad;
    for (const auto& b : bad_images) bad.insert(b.first);
    for (auto& fold : study.splits.folds)
      for (auto* side : {&fold.train, &fold.test})
        side->erase(std::remove_if(side->begin(), side->end(), [&](std::int64_t i) { return bad.count(i) > 0; }),
                    side->end());
    spdlog::warn("{} image(s) could not be decoded and were left out (on_bad_image = \"skip\"); see run.json",
                 bad.size());
    if (cluster.root())
      write_splits_csv(summary.run_dir + "/splits.csv", study.samples, study.classes,
                       study.splits);  // they show as "unused"
  }
  check_folds(study.splits, study.labels, study.classes);
  check_duplicate_content(study);  // after extraction: undecodable files that happen to be equal are not images
  const ExtractionStats& x = summary.extraction;
  spdlog::info(
      "features ready: {} images decoded, {} image x variant pairs forwarded, {} from the feature store, {} segments "
      "written ({:.1f} s)",
      x.images_decoded, x.images_forwarded, x.images_from_store, x.segments_written, x.seconds);
}

// The rows of the images that are used (not left out), for the estimators.
std::vector<std::int64_t> usable_rows(const Study& study, const RunSummary& summary) {
  std::set<std::int64_t> bad;
  for (const auto& b : summary.extraction.bad_images) bad.insert(b.first);
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < study.samples.size(); ++i)
    if (!bad.count(static_cast<std::int64_t>(i))) rows.push_back(static_cast<std::int64_t>(i));
  return rows;
}

// Every rank sends root the predictions of its taps and its estimator rows; root scores them as
// its own (record_predictions) and puts the estimator rows in tap order, as one process would.
void gather_evaluations(const EvaluationSetup& setup, const std::vector<std::size_t>& mine,
                        std::vector<Evaluation>& evaluations, std::vector<TransferabilityRow>& transferability) {
  const Cluster& cluster = Cluster::get();
  Packer out;
  out.u64(mine.size());
  for (auto t : mine) {
    out.u64(t);
    for (auto& e : evaluations)
      for (std::size_t v = 0; v < setup.variants.size(); ++v)
        for (std::size_t f = 0; f < setup.splits.folds.size(); ++f) out.doubles(e.predictions[v][t][f].scores);
  }
  out.u64(transferability.size());
  for (const auto& r : transferability)
    out.u64(r.tap_index), out.text(r.metric), out.f64(r.pretrained), out.f64(r.random_mean), out.f64(r.random_sd);
  const auto all = cluster.gather(out.bytes());
  for (std::size_t rank = 1; rank < all.size(); ++rank) {
    Unpacker in(all[rank]);
    for (std::uint64_t n = in.u64(); n > 0; --n) {
      const auto t = static_cast<std::size_t>(in.u64());
      if (t >= setup.taps.size())
        throw std::runtime_error("rank " + std::to_string(rank) + " sent a tap this study does not have");
      for (std::size_t p = 0; p < evaluations.size(); ++p)
        for (std::size_t v = 0; v < setup.variants.size(); ++v)
          for (std::size_t f = 0; f < setup.splits.folds.size(); ++f) {
            const auto& fold = setup.splits.folds[f];
            Predictions x;
            x.num_classes = setup.num_classes;
            for (auto i : fold.test) x.labels.push_back(setup.labels[static_cast<std::size_t>(i)]);
            x.scores.resize(fold.test.size() * static_cast<std::size_t>(setup.num_classes));
            in.doubles(x.scores);
            record_predictions(setup, p, v, f, t, std::move(x), evaluations[p]);
          }
    }
    for (std::uint64_t n = in.u64(); n > 0; --n) {
      TransferabilityRow r;
      r.tap_index = static_cast<std::size_t>(in.u64());
      r.metric = in.text();
      r.pretrained = in.f64(), r.random_mean = in.f64(), r.random_sd = in.f64();
      r.tap = setup.taps.at(r.tap_index);
      transferability.push_back(r);
    }
  }
  std::stable_sort(transferability.begin(), transferability.end(),
                   [](const TransferabilityRow& a, const TransferabilityRow& b) { return a.tap_index < b.tap_index; });
}

// Probes, estimators and CKA, tap by tap and variant by variant: memory holds one variant's
// features of the taps in flight (and the pretrained ones beside them when CKA compares them).
// Taps are taken one at a time, or a few together when one tap offers fewer fits than threads.
// Each rank evaluates its share of the tap groups (every group in a single process) into
// `evaluations` and lists the taps it did in `mine`; finish_evaluation then puts them together.
void evaluate_stage(const Config& config, const Study& study, const std::vector<FeatureSpace>& spaces,
                    RunSummary& summary, std::vector<Evaluation>& evaluations, std::vector<std::size_t>& mine) {
  const int threads = at::get_num_threads();
  const EvaluationSetup setup{
      study.variants, study.tap_names, study.labels,  static_cast<std::int64_t>(study.classes.size()),
      study.splits,   study.probes,    study.metrics, threads};
  evaluations = start_evaluation(setup);
  const std::size_t fits_per_tap = study.probes.size() * study.splits.folds.size();  // of one variant
  const std::size_t tasks = tasks_per_tap(setup);  // fewer when a probe fits its folds together
  const std::size_t group = std::max<std::size_t>(1, (static_cast<std::size_t>(threads) + tasks - 1) / tasks);
  const bool estimators = study.backbone->has_pretrained_weights() && (!study.feature_metrics.empty() || config.cka);
  const std::vector<std::int64_t> rows = usable_rows(study, summary);
  const at::Tensor usable = at::tensor(rows, at::kLong);
  std::vector<std::int64_t> usable_labels;
  for (auto i : rows) usable_labels.push_back(study.labels[static_cast<std::size_t>(i)]);
  // The pretrained variant first, so that CKA can compare each random variant with it as it passes.
  std::vector<std::size_t> order(study.variants.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_partition(order.begin(), order.end(),
                        [&](std::size_t v) { return study.variants[v].kind == Variant::Kind::pretrained; });
  const Cluster& cluster = Cluster::get();
  Progress progress("probes", "fits",
                    static_cast<std::int64_t>(fits_per_tap * study.variants.size() * study.taps.size()));
  for (std::size_t first = 0, g = 0; first < study.taps.size(); first += group, ++g) {
    if (static_cast<int>(g % static_cast<std::size_t>(cluster.size())) != cluster.rank()) continue;
    std::vector<std::size_t> taps;
    for (std::size_t t = first; t < std::min(study.taps.size(), first + group); ++t) taps.push_back(t);
    std::vector<std::vector<double>> cka(taps.size());  // [k][random variant]
    std::vector<std::vector<std::vector<double>>> scores(
        taps.size(), std::vector<std::vector<double>>(study.variants.size()));  // [k][v][m]
    std::vector<at::Tensor> pretrained;                                         // usable rows, kept for CKA
    for (std::size_t v : order) {
      std::vector<at::Tensor> features;  // [k]
      for (std::size_t t : taps)
        features.push_back(load_tap(spaces[v], t, study.identities, summary.extraction.bad_images, study.samples));
      evaluate_taps(setup, taps, v, features, evaluations, progress);
      if (!estimators) {
        features.clear();
        return_free_memory();  // before the next variant's features (allocator.hpp)
        continue;
      }
      for (auto& x : features) x = rows.size() == study.samples.size() ? x : x.index_select(0, usable);
      const auto estimates = score_estimators(features, usable_labels, static_cast<std::int64_t>(study.classes.size()),
                                              study.feature_metrics, threads);
      for (std::size_t k = 0; k < taps.size(); ++k) scores[k][v] = estimates[k];
      if (!config.cka) continue;
      if (study.variants[v].kind == Variant::Kind::pretrained) {
        pretrained = std::move(features);
      } else {
        const auto values = cka_per_tap(pretrained, features, threads);
        for (std::size_t k = 0; k < taps.size(); ++k) cka[k].push_back(values[k]);
      }
    }
    pretrained.clear();
    // Free pages go back before the next group (allocator.hpp). Also after each variant above:
    // measured at 32,000 patches (ridge probe before it worked in place), once per group left a
    // peak of 1.71 GB against 1.28 GB, for 25 s less (docs/performance.md, "Scale").
    return_free_memory();
    for (std::size_t k = 0; estimators && k < taps.size(); ++k)
      for (auto& r : transferability_rows(taps[k], study.tap_names[taps[k]], study.variants, study.feature_metrics,
                                          scores[k], config.cka, cka[k]))
        summary.transferability.push_back(std::move(r));
    mine.insert(mine.end(), taps.begin(), taps.end());
    spdlog::debug("taps {}-{} evaluated", taps.front(), taps.back());
  }
}

// Root collects the other ranks' taps (gather_evaluations); then the rows take their fixed order.
void finish_evaluation(const Study& study, std::vector<Evaluation>& evaluations, const std::vector<std::size_t>& mine,
                       RunSummary& summary) {
  const EvaluationSetup setup{
      study.variants, study.tap_names, study.labels,  static_cast<std::int64_t>(study.classes.size()),
      study.splits,   study.probes,    study.metrics, at::get_num_threads()};
  if (Cluster::get().distributed()) gather_evaluations(setup, mine, evaluations, summary.transferability);
  for (auto& e : evaluations) {
    e.finish();
    summary.scores.insert(summary.scores.end(), e.rows.begin(), e.rows.end());
  }
}

// Gain with intervals per probe; which estimator ranks the taps like the first probe; LEEP/NCE.
void analyse_stage(const Config& config, Study& study, const std::vector<Evaluation>& evaluations, RunSummary& summary,
                   const std::string& store) {
  GainSettings gain_settings;
  gain_settings.bootstrap = config.bootstrap;
  gain_settings.confidence = config.confidence;
  gain_settings.seed = config.analysis_seed;
  gain_settings.sweet_spot_epsilon = config.sweet_spot_epsilon;
  gain_settings.threads = at::get_num_threads();
  for (const auto& evaluation : evaluations) {
    const auto gain = compute_gain(evaluation, study.variants, study.taps, study.metrics, pooled_parts(config.pooling),
                                   gain_settings);
    summary.gain.insert(summary.gain.end(), gain.begin(), gain.end());
  }
  for (const auto& fm : study.feature_metrics) {
    if (summary.transferability.empty()) break;
    std::vector<double> estimate, probe;
    for (const auto& r : summary.transferability)
      if (r.metric == fm.name) estimate.push_back(r.pretrained);
    for (const auto& g : summary.gain)
      if (g.probe == config.probes.front().name && g.metric == config.metrics.front().name)
        probe.push_back(g.pretrained);
    summary.rank_agreement.push_back({fm.name, spearman(estimate, probe)});
    spdlog::info("transferability: {} ranks the taps with Spearman {:.3f} against the probe's {}", fm.name,
                 summary.rank_agreement.back().second, config.metrics.front().name);
  }
  if (!study.backbone->has_pretrained_weights() || !config.source_transferability) return;
  FeatureSpace space(store, feature_space_key(config, study, "source (class probabilities of the backbone's head)"),
                     StoragePrecision::float32);
  const at::Tensor probs = extract_source_predictions(*study.backbone, config.pooling, extraction_input(config, study),
                                                      space, summary.extraction.bad_images);
  if (!probs.defined()) {
    spdlog::warn(
        "[transferability] source = true, but the backbone has no classifier head: LEEP and NCE are not computed");
    return;
  }
  const std::vector<std::int64_t> rows = usable_rows(study, summary);
  std::vector<std::int64_t> labels;
  for (auto i : rows) labels.push_back(study.labels[static_cast<std::size_t>(i)]);
  const at::Tensor p = probs.index_select(0, at::tensor(rows, at::kLong));
  const auto k = static_cast<std::int64_t>(study.classes.size());
  summary.source_transferability = {{"leep", leep(p, labels, k)}, {"nce", nce(p, labels, k)}};
  spdlog::info("source transferability: LEEP {:.4f}, NCE {:.4f}", summary.source_transferability[0].second,
               summary.source_transferability[1].second);
}

// run.json: what the report needs besides the numbers (software, dataset summary).
nlohmann::json run_json(const Config& config, const Study& study, const RunSummary& summary) {
  nlohmann::json run;
  run["name"] = config.name;
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  run["finished"] = stamp;
  run["seconds"] = summary.seconds;
  run["extraction_seconds"] = summary.extraction.seconds;
  run["random_seeds"] = config.random_seeds.size();
  run["input_size"] = study.prep.size;
  run["backbone_fingerprint"] = study.backbone->fingerprint();  // predictions files are checked against it
  run["software"] = {{"kgain", KGAIN_VERSION}, {"libtorch", TORCH_VERSION}, {"plugins", nlohmann::json::array()}};
  const auto add_plugin = [&](PluginKind kind, const std::string& name) {
    const PluginEntry& e = study.registry.find(kind, name);
    run["software"]["plugins"].push_back(
        {{"kind", to_string(kind)}, {"name", name}, {"version", e.info.version}, {"library", e.library_path}});
  };
  add_plugin(PluginKind::dataset, config.dataset.plugin);
  add_plugin(PluginKind::backbone, config.backbone.plugin);
  for (const auto& p : config.probes) add_plugin(PluginKind::probe, p.plugin);
  for (const auto& m : config.metrics) add_plugin(PluginKind::metric, m.plugin);
  for (const auto& m : config.feature_metrics) add_plugin(PluginKind::feature_metric, m.plugin);
  run["dataset"] = {{"description", study.dataset->description()},
                    {"images", study.samples.size()},
                    {"split_strategy", study.splits.strategy},
                    {"folds", study.splits.folds.size()},
                    {"classes", nlohmann::json::array()}};
  for (std::size_t c = 0; c < study.classes.size(); ++c) {
    std::int64_t images = 0;
    std::set<std::string> groups;
    for (const auto& s : study.samples)
      if (s.label == static_cast<int>(c)) ++images, groups.insert(s.group);
    groups.erase("");
    run["dataset"]["classes"].push_back({{"name", study.classes[c]}, {"images", images}, {"groups", groups.size()}});
  }
  run["dataset"]["warnings"] = study.dataset->warnings();  // what the log said of the set as loaded
  run["dataset"]["bad_images"] = nlohmann::json::array();
  for (const auto& [index, reason] : summary.extraction.bad_images)
    run["dataset"]["bad_images"].push_back(
        {{"path", study.samples[static_cast<std::size_t>(index)].path}, {"reason", reason}});
  return run;
}

// Every result file, then the report drawn from them.
void write_stage(const Config& config, const Study& study, const std::vector<Evaluation>& evaluations,
                 RunSummary& summary) {
  const std::string& dir = summary.run_dir;
  clear_predictions(dir);
  RunPredictions made_for;  // what kgain compare --paired checks the files against
  made_for.config_hash = hash_hex(config.resolved_toml);
  made_for.splits_hash = hash_hex(read_file(dir + "/splits.csv"));
  made_for.backbone_fingerprint = study.backbone->fingerprint();
  made_for.image_identities = study.identities;
  for (std::size_t p = 0; config.save_predictions && p < evaluations.size(); ++p)
    write_probe_predictions(dir, p, study.probes[p].name, evaluations[p], study.variants, study.tap_names, study.splits,
                            static_cast<std::int64_t>(study.classes.size()), made_for);
  const StudyLabels labels{config.dataset.name, config.backbone.name};
  write_transferability_csv(dir + "/transferability.csv", labels, summary.transferability);
  write_results_csv(dir + "/results.csv", labels, summary.scores);
  write_gain_csv(dir + "/gain.csv", labels, summary.gain);
  write_gain_json(dir + "/gain.json", labels, summary.gain, config.confidence, summary.transferability,
                  summary.rank_agreement, config.metrics.front().name, summary.source_transferability);
  write_file_atomically(dir + "/run.json", run_json(config, study, summary).dump(2) + "\n");
  write_report(dir);
}

// In an MPI job: every rank must see the folder root wrote into (a shared filesystem).
void check_visible(const std::string& dir, const std::string& what) {
  const Cluster& cluster = Cluster::get();
  if (!cluster.distributed()) return;
  std::string token;
  cluster.together([&] {
    if (!cluster.root()) return;
    token = host_name() + " " + std::to_string(::getpid()) + " " +
            std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    write_file_atomically(dir + "/.kgain-visible", token);
  });
  cluster.broadcast(token);
  cluster.together([&] {
    if (read_file(dir + "/.kgain-visible") != token)
      throw std::runtime_error(
          "rank " + std::to_string(cluster.rank()) + " does not see the " + what + " '" + dir +
          "' that rank 0 wrote to: the run "
          "directory and the feature store must be on a filesystem every rank sees (NFS, Lustre, GPFS; not a node's "
          "local disk), see docs/cluster.md");
  });
}

}  // namespace

// The study as the architecture page draws it: plan, extract, evaluate, analyse, write.
namespace {

// The run directory, locked for this run (root only) and checked against the config, with its
// log open: both last as long as the run.
struct OpenRunDir {
  std::unique_ptr<RunDirLock> lock;
  std::unique_ptr<RunLog> log;
};

OpenRunDir open_run_dir(const Config& config, const RunOptions& options, const RunSummary& summary) {
  const Cluster& cluster = Cluster::get();
  OpenRunDir dir;
  cluster.together([&] {
    if (!cluster.root()) return;
    fs::create_directories(summary.run_dir);
    dir.lock = std::make_unique<RunDirLock>(summary.run_dir);
    check_run_dir(summary.run_dir, config, options);
  });
  check_visible(summary.run_dir, "run directory");
  dir.log = std::make_unique<RunLog>(
      summary.run_dir + (cluster.root() ? "/kgain.log" : "/kgain.rank-" + std::to_string(cluster.rank()) + ".log"));
  if (cluster.distributed()) {
    spdlog::default_logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(cluster.rank()) +
                                          "] [%l] %v");
    if (!cluster.root()) Progress::enable(false);  // one progress line, root's
  }
  if (cluster.root())
    if (const int stale = remove_stale_temporaries(summary.run_dir); stale > 0)
      spdlog::info("removed {} temporary file(s) that an interrupted run left behind", stale);
  spdlog::info("kgain {} run '{}' from {} into {}", KGAIN_VERSION, config.name, config.file, summary.run_dir);
  if (cluster.distributed()) spdlog::info("MPI job of {} ranks: this is rank {}", cluster.size(), cluster.rank());
  return dir;
}

// Plugins, images and folds, taps, image identities and batch-norm calibration, on every rank.
void plan_stage(const Config& config, Study& study, RunSummary& summary) {
  Cluster::get().together([&] {
    load_plugins(config, study);
    plan_images(config, study, summary);
    plan_network(config, study);
    study.identities = image_identities(study.samples, study.prep.pixel_source, std::max(2, decode_threads(config)));
    if (config.recalibrate_batch_norm) calibrate_batch_norm(config, study);
  });
}

// Everything was accepted: the directory is now this run's (a config that fails before this
// point leaves nothing behind, so the corrected config is not refused). Returns the store.
std::string claim_run_dir(const Config& config, const Study& study, const RunSummary& summary) {
  const Cluster& cluster = Cluster::get();
  std::string store = feature_store_dir(config, summary.run_dir);  // not const: returned by move
  cluster.together([&] {
    if (!cluster.root()) return;
    write_file_atomically(summary.run_dir + "/config.resolved.toml", config.resolved_toml);
    write_splits_csv(summary.run_dir + "/splits.csv", study.samples, study.classes, study.splits);
    write_taps_csv(summary.run_dir + "/taps.csv", study.taps);
    fs::create_directories(store);
  });
  check_visible(store, "feature store");
  return store;
}

}  // namespace

// The study: plan, extract, evaluate, analyse, write (docs/architecture.md).
RunSummary run_study(const Config& config, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Cluster& cluster = Cluster::get();  // under mpirun: one of several ranks (cluster.hpp)
  RunSummary summary;
  summary.root = cluster.root();
  summary.run_dir = run_dir_of(config, options);
  const OpenRunDir dir = open_run_dir(config, options, summary);
  set_threads(config.threads);
  spdlog::info("LibTorch {} with {} threads", TORCH_VERSION, at::get_num_threads());

  Study study;
  plan_stage(config, study, summary);
  const std::string store = claim_run_dir(config, study, summary);
  std::vector<FeatureSpace> spaces;
  cluster.together([&] { spaces = open_feature_spaces(config, study, store); });
  extract_stage(config, study, spaces, store, summary);
  std::vector<Evaluation> evaluations;
  std::vector<std::size_t> mine;
  cluster.together([&] { evaluate_stage(config, study, spaces, summary, evaluations, mine); });
  finish_evaluation(study, evaluations, mine, summary);
  if (!cluster.root()) {
    spdlog::info("rank {} done: its share is with rank 0", cluster.rank());
    return summary;
  }
  analyse_stage(config, study, evaluations, summary, store);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_stage(config, study, evaluations, summary);
  spdlog::info("done in {:.1f} s: {}/report.html, gain.csv, results.csv", summary.seconds, summary.run_dir);
  return summary;
}

}  // namespace kgain::core
