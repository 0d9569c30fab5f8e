// Config: a study described in TOML, loaded into typed and validated settings.
//
// Every error names the file, the line:column and the key, says what was expected and what was
// found, and suggests the fix (the closest known key for a typo). Plugin tables ([dataset],
// [backbone], [probe], [metrics.<name>]) are handed to the plugin as Options; the keys the core
// itself reads there (`plugin`, `name`, `limit_per_class`) are taken out first. The full list of
// keys, types and defaults is docs/config.md, which a test checks against this loader.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <kgain/backbone.hpp>
#include <kgain/options.hpp>

namespace kgain::core {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A table that names a plugin.
struct PluginSection {
  std::string plugin;  // the plugin's name, as in `kgain list`
  std::string name;    // how results name it (defaults to the plugin name)
  std::string where;   // file:line:column of the table
  Options options;     // the table's other keys
};

// The settings of a study. Their defaults are written once, in the loader (config.cpp), which
// records them in `key_defaults`; docs/config.md lists them, checked by a test.
struct Config {
  std::string file;      // the config file (as given)
  std::string base_dir;  // relative paths in the config are relative to this directory
  std::string name;      // [run] name, default: the file's stem

  // [run]
  int threads{};         // 0: every core
  int decode_threads{};  // image decoding workers; 0: a quarter of the cores, at least 1
  std::int64_t batch_size{};
  std::vector<std::string> plugin_paths;  // searched before the default plugin directories
  // The feature store (feature_store.hpp); empty: $KGAIN_FEATURE_STORE, else RUN_DIR/cache.
  std::string feature_store;

  // [dataset]
  PluginSection dataset;
  std::int64_t limit_per_class{};  // 0: every image; else at most this many per class and split
  bool skip_bad_images{};          // on_bad_image = "skip": leave undecodable images out, listed

  // [backbone]
  PluginSection backbone;

  // [features]
  std::int64_t input_size{};  // 0: the backbone's native size
  std::string resize;         // shorter_side_crop | stretch | pad
  Pooling pooling = Pooling::avg;
  std::string stain_normalization;  // none | reinhard | macenko
  std::string stain_reference;      // the reference image (resolved path)
  std::string storage;              // how stored features are kept: float32 | float16

  // [variants]
  std::vector<std::uint64_t> random_seeds;
  // Random variants re-estimate their batch-norm statistics on `calibration_images` training
  // images (labels unused) before extraction; needs a backbone that can (native).
  bool recalibrate_batch_norm{};
  std::int64_t calibration_images{};

  // [splits]
  std::string split_strategy;  // auto | dataset | kfold | group_kfold
  int folds{};
  std::uint64_t split_seed{};
  int split_repeats{};  // repeated k-fold: seeds split_seed, split_seed + 1, ...

  // [probe], or [[probe]] tables for several probes (each with its own `name`)
  std::vector<PluginSection> probes;
  std::vector<std::uint64_t> probe_seeds;  // the `seed` key of each probe table

  // [metrics]
  std::vector<PluginSection> metrics;

  // [transferability]
  std::vector<PluginSection> estimators;
  bool cka{};
  bool source_transferability{};  // LEEP and NCE from the backbone's own ImageNet head

  // [analysis]
  int bootstrap{};  // bootstrap replicates for the intervals; 0: none
  double confidence{};
  std::uint64_t analysis_seed{};
  double sweet_spot_epsilon{};
  // predictions/<probe>.kgpred: every test prediction, for kgain compare --paired
  // (variants x taps x test images x classes doubles per probe).
  bool save_predictions{};

  // Every core key the loader understands, as "section.key" (checked against docs/config.md),
  // and its default as TOML text ("32", "\"auto\""; empty when computed or required).
  std::vector<std::string> known_keys;
  std::map<std::string, std::string> key_defaults;

  // The config with every default written out: saved in the run directory, and compared on a
  // rerun to decide whether the run directory's feature store belongs to this study.
  std::string resolved_toml;
};

// Loads and validates a config file; throws ConfigError.
Config load_config(const std::string& path);
// The same from text; `path` is used for messages and relative paths.
Config parse_config(const std::string& text, const std::string& path);

// Reports the plugin options that no plugin read as unknown keys (with the closest read key as
// a suggestion); call it after the plugin was created. Throws ConfigError.
void check_unread_options(const PluginSection& section, const std::string& kind);

std::string to_string(Pooling pooling);

// True when two resolved configs describe the same measurement: the same [dataset],
// [backbone], [features] and [variants]. Probes, metrics, splits and the analysis may differ
// (a rerun that adds a metric replaces the results and reuses the features).
bool same_measurement(const std::string& resolved_a, const std::string& resolved_b);

// The known key closest to `key` (edit distance at most 3), or empty.
std::string closest(const std::string& key, const std::vector<std::string>& known);

}  // namespace kgain::core
