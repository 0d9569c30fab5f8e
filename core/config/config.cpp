#include "config/config.hpp"

#include <optional>

#include "runtime/text_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "config/bundled_defaults.hpp"
#include "config/plugin_tables.hpp"
#include "config/section_reader.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

using namespace config_parts;

const std::vector<std::pair<Pooling, std::string>> pooling_names = {
    {Pooling::avg, "avg"}, {Pooling::max, "max"},   {Pooling::avgmax, "avgmax"},
    {Pooling::cls, "cls"}, {Pooling::mean, "mean"}, {Pooling::cls_mean, "cls_mean"}};

// The parts of one config file being read.
struct ConfigSource {
  const toml::table& root;
  const std::string& file;
  const toml::table* table(const std::string& key) const { return table_of(root, key, file); }
};

void read_run(const ConfigSource& in, Config& c, ConfigRecord& record) {
  const toml::table* t = in.table("run");
  SectionReader r(t, "run", in.file, record);
  c.name = r.string("name", fs::path(in.file).stem().string());
  r.computed_default("name");
  // The name becomes a folder under runs/: one plain path component.
  if (c.name.empty() || c.name == "." || c.name == ".." ||
      c.name.find_first_of(std::string("/\\\0", 3)) != std::string::npos ||
      std::any_of(c.name.begin(), c.name.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20; }))
    throw ConfigError(
        where(in.file, t && t->get("name") ? t->get("name")->source() : toml::source_region{}) + ": [run] name: '" +
        c.name +
        "' cannot name a run folder (it must be non-empty, not '.' or '..', without '/', '\\' or control characters)");
  // A resolved config written into a run directory keeps the original config's directory.
  c.base_dir = r.string("config_dir", c.base_dir);
  r.computed_default("config_dir");
  c.threads = static_cast<int>(r.integer("threads", 0, 0, 1024));
  c.batch_size = r.integer("batch_size", 32, 1, 4096);
  c.decode_threads = static_cast<int>(r.integer("decode_threads", 0, 0, 256));
  c.plugin_paths = r.strings("plugin_paths", {});
  for (auto& p : c.plugin_paths)
    if (!p.empty() && p.front() != '/') p = c.base_dir + "/" + p;
  r.resolve("plugin_paths", c.plugin_paths);
  c.feature_store = r.path("feature_store", c.base_dir);
  r.check_unknown();
}

void read_dataset(const ConfigSource& in, Config& c, ConfigRecord& record) {
  const toml::table* t = in.table("dataset");
  if (!t)
    throw ConfigError(
        in.file + ": the config has no [dataset] table: add one naming a dataset plugin, e.g.\n[dataset]\nplugin = \"" +
        bundled_default("data", "with_manifest") + "\"\nroot = \"../shared/data/pcam-mini\"");
  c.dataset = core_plugin_table(t, "dataset", in.file, c.base_dir, "", record);
  c.limit_per_class = core_option(c.dataset, "limit_per_class", 0, record);
  const std::string on_bad = core_option(c.dataset, "on_bad_image", "fail", record);
  if (on_bad != "fail" && on_bad != "skip")
    throw ConfigError(c.dataset.options.where("on_bad_image") +
                      ": [dataset] on_bad_image: must be \"fail\" or \"skip\" (received \"" + on_bad + "\")");
  c.skip_bad_images = on_bad == "skip";
  if (c.limit_per_class < 0)
    throw ConfigError(c.dataset.options.where("limit_per_class") +
                      ": [dataset] limit_per_class: must be 0 (every image) or positive (received " +
                      std::to_string(c.limit_per_class) + ")");
  record.set_section("dataset", options_table(c.dataset));
}

void read_backbone(const ConfigSource& in, Config& c, ConfigRecord& record) {
  const toml::table* t = in.table("backbone");
  if (!t)
    throw ConfigError(
        in.file +
        ": the config has no [backbone] table: add one naming a backbone plugin, e.g.\n[backbone]\nplugin = \"" +
        bundled_default("inspect", "file") + "\"\nfile = \"model.ts.pt\"");
  c.backbone = core_plugin_table(t, "backbone", in.file, c.base_dir, "", record);
  record.set_section("backbone", options_table(c.backbone));
}

void read_features(const ConfigSource& in, Config& c, ConfigRecord& record) {
  const toml::table* t = in.table("features");
  SectionReader r(t, "features", in.file, record);
  // A decoding chunk of 256 images at 1024 px is 3 GB of floats; beyond that no CNN study fits.
  c.input_size = r.integer("input_size", 0, 0, 1024);
  c.resize = r.string("resize", "shorter_side_crop", {"shorter_side_crop", "stretch", "pad"});
  std::vector<std::string> names;
  for (const auto& entry : pooling_names) names.push_back(entry.second);
  const std::string pooling = r.string("pooling", "avg", names);
  for (const auto& [p, name] : pooling_names)
    if (name == pooling) c.pooling = p;
  c.stain_normalization = r.string("stain_normalization", "none", {"none", "reinhard", "macenko"});
  c.storage = r.string("storage", "float32", {"float32", "float16"});
  c.stain_reference = r.path("stain_reference", c.base_dir);
  if (c.stain_reference.empty()) r.leave_out("stain_reference");  // as configs written before it existed
  if (c.stain_normalization != "none" && c.stain_reference.empty())
    throw ConfigError(
        where(in.file, t ? t->source() : toml::source_region{}) + ": [features] stain_normalization = \"" +
        c.stain_normalization +
        "\" needs stain_reference = \"path/to/reference-tile.png\" (a well-stained tile from the target lab)");
  if (!c.stain_reference.empty() && !std::filesystem::is_regular_file(c.stain_reference))
    throw ConfigError(where(in.file, r.source("stain_reference")) + ": [features] stain_reference: the file '" +
                      c.stain_reference + "' does not exist");
  r.check_unknown();
}

void read_variants(const ConfigSource& in, Config& c, ConfigRecord& record) {
  SectionReader r(in.table("variants"), "variants", in.file, record);
  c.random_seeds = r.seeds("random_seeds", {0, 1, 2});
  if (c.random_seeds.empty())
    throw ConfigError(where(in.file, r.source("random_seeds")) +
                      ": [variants] random_seeds: needs at least one seed, since the knowledge gain is measured "
                      "against random weights");
  std::set<std::uint64_t> unique(c.random_seeds.begin(), c.random_seeds.end());
  if (unique.size() != c.random_seeds.size())
    throw ConfigError(where(in.file, r.source("random_seeds")) + ": [variants] random_seeds: a seed is listed twice");
  c.recalibrate_batch_norm = r.boolean("recalibrate_batch_norm", false);
  c.calibration_images = r.integer("calibration_images", 256, 1, 100000);
  r.check_unknown();
}

void read_splits(const ConfigSource& in, Config& c, ConfigRecord& record) {
  SectionReader r(in.table("splits"), "splits", in.file, record);
  c.split_strategy = r.string("strategy", "auto", {"auto", "dataset", "kfold", "group_kfold"});
  c.folds = static_cast<int>(r.integer("folds", 5, 2, 100));
  c.split_seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0, INT64_MAX));
  c.split_repeats = static_cast<int>(r.integer("repeats", 1, 1, 100));
  r.check_unknown();
}

// One [probe] table, or several [[probe]] tables.
void read_probes(const ConfigSource& in, Config& c, ConfigRecord& record) {
  std::vector<const toml::table*> tables;
  if (const toml::node* n = in.root.get("probe"); n && n->is_array_of_tables()) {
    for (const auto& item : *n->as_array()) tables.push_back(item.as_table());
  } else {
    tables.push_back(in.table("probe"));
  }
  toml::array resolved;
  for (const toml::table* t : tables) {
    PluginSection s = core_plugin_table(t, "probe", in.file, c.base_dir, bundled_default("probe", "plugin"), record);
    const std::int64_t seed = core_option(s, "seed", 0, record);
    if (seed < 0)
      throw ConfigError(s.options.where("seed") + ": [probe] seed: must be 0 or positive (received " +
                        std::to_string(seed) + ")");
    for (const auto& other : c.probes)
      if (other.name == s.name)
        throw ConfigError(s.where + ": two probes are named '" + s.name +
                          "': give each [[probe]] a distinct name = \"...\"");
    c.probe_seeds.push_back(static_cast<std::uint64_t>(seed));
    resolved.push_back(options_table(s));
    c.probes.push_back(std::move(s));
  }
  if (resolved.size() == 1)
    record.set_section("probe", std::move(*resolved[0].as_table()));
  else
    record.set_section("probe", std::move(resolved));
}

// [metrics] or [transferability]: `names` lists plugins, each with an optional [section.<name>]
// table of options.
std::vector<PluginSection> read_plugin_list(const ConfigSource& in, const toml::table* t, SectionReader& r,
                                            const std::string& section, const std::string& what,
                                            const std::string& base_dir, ConfigRecord& record) {
  static const toml::table empty;
  const auto names = r.strings("names", bundled_default_list(section, "names"));
  std::set<std::string> seen;
  for (const auto& n : names)
    if (!seen.insert(n).second) r.fail("names", *t->get("names"), "the " + what + " '" + n + "' is listed twice");
  std::vector<PluginSection> out;
  for (const auto& n : names) {
    const toml::table* sub = t ? table_of(*t, n, in.file) : nullptr;
    PluginSection s = plugin_section(sub ? *sub : empty, section + "." + n, in.file, base_dir, n);
    if (!sub) s.where = t && t->get("names") ? where(in.file, t->get("names")->source()) : in.file;
    if (!s.options.values().empty()) record.section(section).insert(n, options_table(s));
    out.push_back(std::move(s));
    r.allow_table(n);
  }
  return out;
}

void read_metrics(const ConfigSource& in, Config& c, ConfigRecord& record) {
  const toml::table* t = in.table("metrics");
  SectionReader r(t, "metrics", in.file, record);
  c.metrics = read_plugin_list(in, t, r, "metrics", "metric", c.base_dir, record);
  if (c.metrics.empty()) {
    const auto bundled = bundled_default_list("metrics", "names");
    throw ConfigError(where(in.file, r.source("names")) + ": [metrics] names: list at least one metric" +
                      (bundled.empty() ? std::string(" (see 'kgain list')") : ", e.g. [\"" + bundled.front() + "\"]"));
  }
  r.check_unknown();
}

void read_transferability(const ConfigSource& in, Config& c, ConfigRecord& record) {
  const toml::table* t = in.table("transferability");
  SectionReader r(t, "transferability", in.file, record);
  c.estimators = read_plugin_list(in, t, r, "transferability", "transferability estimator", c.base_dir, record);
  c.cka = r.boolean("cka", true);
  c.source_transferability = r.boolean("source", false);
  r.check_unknown();
}

void check_sections(const toml::table& root, const std::string& path) {
  static const std::vector<std::string> sections{"run",    "dataset", "backbone", "features",        "variants",
                                                 "splits", "probe",   "metrics",  "transferability", "analysis"};
  for (const auto& [key, node] : root) {
    const std::string k(key.str());
    if (std::find(sections.begin(), sections.end(), k) != sections.end()) continue;
    std::string msg = where(path, key.source()) + ": unknown section '" + k + "'";
    if (const auto guess = closest(k, sections); !guess.empty()) msg += "; did you mean [" + guess + "]?";
    std::string list;
    for (const auto& section : sections) list += (list.empty() ? "[" : ", [") + section + "]";
    throw ConfigError(msg + " Sections: " + list + ".");
  }
}

void read_analysis(const ConfigSource& in, Config& c, ConfigRecord& record) {
  SectionReader r(in.table("analysis"), "analysis", in.file, record);
  c.bootstrap = static_cast<int>(r.integer("bootstrap", 1000, 0, 1000000));
  c.confidence = r.number("confidence", 0.95, 0.5, 0.999);
  c.analysis_seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0, INT64_MAX));
  c.sweet_spot_epsilon = r.number("sweet_spot_epsilon", 0.0, 0.0, 1e9);
  c.save_predictions = r.boolean("save_predictions", true);
  r.check_unknown();
}

}  // namespace

std::string to_string(Pooling pooling) {
  for (const auto& [p, name] : pooling_names)
    if (p == pooling) return name;
  return "?";
}

std::string closest(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_distance = 4;
  for (const auto& k : known) {
    std::vector<std::size_t> prev(k.size() + 1), cur(k.size() + 1);
    for (std::size_t j = 0; j <= k.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= key.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= k.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (key[i - 1] == k[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    if (prev[k.size()] < best_distance) best_distance = prev[k.size()], best = k;
  }
  return best;
}

Config load_config(const std::string& path) {
  constexpr std::uintmax_t max_config_bytes = 64ULL << 20;  // a config lists settings, not data
  std::optional<std::string> text;
  try {
    text = read_text_file(path, max_config_bytes);
  } catch (const std::runtime_error& e) {
    throw ConfigError(e.what());
  }
  if (!text)
    throw ConfigError("cannot read the config file '" + path + "': " +
                      (!fs::exists(path)        ? "it does not exist"
                       : fs::is_directory(path) ? "it is a folder"
                                                : "permission denied"));
  return parse_config(*text, path);
}

Config parse_config(const std::string& text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw ConfigError(where(path, e.source()) + ": not valid TOML: " + std::string(e.description()));
  }
  check_sections(root, path);
  Config c;
  c.file = path;
  std::error_code ec;
  c.base_dir = fs::absolute(fs::path(path).parent_path(), ec).lexically_normal().string();
  if (!c.base_dir.empty() && c.base_dir.back() == '/') c.base_dir.pop_back();

  ConfigRecord record(c);
  const ConfigSource in{root, path};
  for (auto read : {read_run, read_dataset, read_backbone, read_features, read_variants, read_splits, read_probes,
                    read_metrics, read_transferability, read_analysis})
    read(in, c, record);
  c.resolved_toml = record.text();
  return c;
}

namespace {

// A resolved config as today's loader resolves it: one written by an earlier kgain lacks the
// keys added since (they take their defaults), which must not make it another measurement.
std::string with_todays_defaults(const std::string& resolved) {
  try {
    return parse_config(resolved, "config.resolved.toml").resolved_toml;
  } catch (const std::exception&) {
    return resolved;  // compared as it is (and then most likely different)
  }
}

}  // namespace

bool same_measurement(const std::string& resolved_a, const std::string& resolved_b) {
  try {
    const toml::table a = toml::parse(with_todays_defaults(resolved_a)),
                      b = toml::parse(with_todays_defaults(resolved_b));
    for (const char* section : {"dataset", "backbone", "features", "variants"}) {
      if (!a[section] || !b[section] || !(a[section] == b[section])) return false;
    }
    return true;
  } catch (const toml::parse_error&) {
    return false;
  }
}

}  // namespace kgain::core
