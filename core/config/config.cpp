#include "config/config.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "config/bundled_defaults.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

const std::vector<std::pair<Pooling, std::string>> pooling_names = {
    {Pooling::avg, "avg"}, {Pooling::max, "max"},   {Pooling::avgmax, "avgmax"},
    {Pooling::cls, "cls"}, {Pooling::mean, "mean"}, {Pooling::cls_mean, "cls_mean"}};

std::string where(const std::string& file, const toml::source_region& src) {
  return file + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// Everything the loader read: the resolved config (each core key with the value it took, from
// the file or by default) and, per key, its default. The resolved config and the known-key list
// are made from this record, so a key is written once, where it is read.
class ConfigRecord {
 public:
  explicit ConfigRecord(Config& config) : config_(config) {}

  toml::table& section(const std::string& name) {
    if (!resolved_.contains(name)) resolved_.insert(name, toml::table{});
    return *resolved_[name].as_table();
  }
  void set_section(const std::string& name, toml::node&& value) { resolved_.insert_or_assign(name, std::move(value)); }
  // A core key: `default_text` is its default as TOML, or empty when it is computed or required.
  void note(const std::string& section, const std::string& key, const std::string& default_text) {
    const std::string name = section + "." + key;
    if (config_.key_defaults.insert_or_assign(name, default_text).second) config_.known_keys.push_back(name);
  }
  std::string text() const {
    std::ostringstream out;
    out << resolved_;
    return out.str();
  }

 private:
  Config& config_;
  toml::table resolved_;
};

toml::array to_toml(const std::vector<std::string>& values) {
  toml::array a;
  for (const auto& v : values) a.push_back(v);
  return a;
}
toml::array to_toml(const std::vector<std::uint64_t>& values) {
  toml::array a;
  for (auto v : values) a.push_back(static_cast<std::int64_t>(v));
  return a;
}
template <class T>
T to_toml(const T& value) {
  return value;
}

// A value as TOML text ("32", "\"auto\"", "[ 0, 1, 2 ]").
template <class T>
std::string toml_text(const T& value) {
  std::ostringstream out;
  out << toml::table{{"v", to_toml(value)}};
  std::string s = out.str();
  s = s.substr(s.find('=') + 1);
  return s.substr(s.find_first_not_of(' '), s.find_last_not_of(" \n") - s.find_first_not_of(' ') + 1);
}

// Reads the keys of one core section: checks types and ranges, records each key with the value
// it took and its default, and reports unknown keys.
class SectionReader {
 public:
  SectionReader(const toml::table* table, std::string section, std::string file, ConfigRecord& record)
      : table_(table ? *table : empty_),
        section_(std::move(section)),
        file_(std::move(file)),
        record_(record),
        resolved_(record.section(section_)) {}

  [[noreturn]] void fail(const std::string& key, const toml::node& node, const std::string& problem) const {
    throw ConfigError(where(file_, node.source()) + ": [" + section_ + "] " + key + ": " + problem);
  }
  double number(const std::string& key, double fallback, double min, double max) {
    double v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_number(), "a number");
      v = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
      if (!(v >= min && v <= max))
        fail(key, *n,
             "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (received " +
                 std::to_string(v) + ")");
    }
    return remember(key, v, fallback);
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
    std::int64_t v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_integer(), "an integer");
      v = n->as_integer()->get();
      if (v < min || v > max)
        fail(key, *n,
             "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (received " +
                 std::to_string(v) + ")");
    }
    return remember(key, v, fallback);
  }
  std::string string(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed = {}) {
    std::string v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_string(), "a string");
      v = n->as_string()->get();
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
        fail(key, *n, "must be one of " + list + " (received \"" + v + "\")");
      }
    }
    return remember(key, v, fallback);
  }
  bool boolean(const std::string& key, bool fallback) {
    bool v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_boolean(), "true or false");
      v = n->as_boolean()->get();
    }
    return remember(key, v, fallback);
  }
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& fallback) {
    std::vector<std::string> v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_array(), "an array of strings");
      v.clear();
      for (const auto& item : *n->as_array()) {
        expect(key, item, item.is_string(), "an array of strings");
        v.push_back(item.as_string()->get());
      }
    }
    return remember(key, v, fallback);
  }
  std::vector<std::uint64_t> seeds(const std::string& key, const std::vector<std::uint64_t>& fallback) {
    std::vector<std::uint64_t> v = fallback;
    if (const toml::node* n = get(key)) {
      expect(key, *n, n->is_array(), "an array of non-negative integers");
      v.clear();
      for (const auto& item : *n->as_array()) {
        expect(key, item, item.is_integer() && item.as_integer()->get() >= 0, "an array of non-negative integers");
        v.push_back(static_cast<std::uint64_t>(item.as_integer()->get()));
      }
    }
    return remember(key, v, fallback);
  }
  // A path: relative ones are taken from `base_dir`, and the resolved config holds the result.
  std::string path(const std::string& key, const std::string& base_dir) {
    std::string v = string(key, "");
    if (!v.empty() && v.front() != '/') v = base_dir + "/" + v;
    resolve(key, v);
    return v;
  }

  // The default of `key` is computed (the file's stem, its folder), not a constant.
  void computed_default(const std::string& key) { record_.note(section_, key, ""); }
  // What the resolved config holds for `key`, when the loader changed the value read.
  template <class T>
  void resolve(const std::string& key, const T& value) {
    resolved_.insert_or_assign(key, to_toml(value));
  }
  void leave_out(const std::string& key) { resolved_.erase(key); }
  // A sub-table `[section.key]` (a metric's options) is a known key, not a core one.
  void allow_table(const std::string& key) { known_.push_back(key); }
  // The node of a key read before (for messages about its value), or the table's.
  const toml::source_region& source(const std::string& key) const {
    const toml::node* n = table_.get(key);
    return n ? n->source() : table_.source();
  }
  // Every key of the table must have been asked for.
  void check_unknown() const {
    for (const auto& [key, node] : table_) {
      const std::string k(key.str());
      if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
      std::string msg = where(file_, key.source()) + ": [" + section_ + "] unknown key '" + k + "'";
      if (const auto guess = closest(k, known_); !guess.empty()) msg += "; did you mean '" + guess + "'?";
      std::string list;
      for (const auto& kk : known_) list += (list.empty() ? "" : ", ") + kk;
      throw ConfigError(msg + " Known keys of [" + section_ + "]: " + list + ".");
    }
  }

 private:
  const toml::node* get(const std::string& key) {
    known_.push_back(key);
    return table_.get(key);
  }
  void expect(const std::string& key, const toml::node& node, bool ok, const std::string& expected) const {
    if (!ok) fail(key, node, "expected " + expected + ", found " + type_name(node));
  }
  template <class T>
  T remember(const std::string& key, T value, const T& fallback) {
    record_.note(section_, key, toml_text(fallback));
    resolve(key, value);
    return value;
  }

  static inline const toml::table empty_{};
  const toml::table& table_;
  std::string section_;
  std::string file_;
  ConfigRecord& record_;
  toml::table& resolved_;
  std::vector<std::string> known_;
};

// A plugin option that is nan or inf is always a mistake, and a plugin that compares it
// against a range would let it through (every comparison with NaN is false).
double finite_number(const toml::node& node, const std::string& file, const std::string& section,
                     const std::string& key) {
  const double v = node.as_floating_point()->get();
  if (!std::isfinite(v))
    throw ConfigError(where(file, node.source()) + ": [" + section + "] " + key +
                      ": must be a finite number (received " + std::to_string(v) + ")");
  return v;
}

Options::Value to_value(const toml::node& node, const std::string& file, const std::string& section,
                        const std::string& key) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return i->get();
  if (node.is_floating_point()) return finite_number(node, file, section, key);
  if (auto b = node.as_boolean()) return b->get();
  if (auto a = node.as_array()) {
    Options::List list;
    for (const auto& item : *a) {
      if (auto s = item.as_string())
        list.emplace_back(s->get());
      else if (auto i = item.as_integer())
        list.emplace_back(i->get());
      else if (item.is_floating_point())
        list.emplace_back(finite_number(item, file, section, key));
      else if (auto b = item.as_boolean())
        list.emplace_back(b->get());
      else
        throw ConfigError(where(file, item.source()) + ": [" + section + "] " + key +
                          ": arrays of plugin options hold strings, numbers or booleans, found " + type_name(item));
    }
    return list;
  }
  throw ConfigError(where(file, node.source()) + ": [" + section + "] " + key +
                    ": plugin options are strings, numbers, booleans or arrays, found " + type_name(node));
}

// A plugin table: `plugin` names the plugin, `name` labels it in results; the other keys are
// the plugin's options (the core's own keys among them are read by the caller and marked read).
PluginSection plugin_section(const toml::table& table, const std::string& section, const std::string& file,
                             const std::string& base_dir, const std::string& default_plugin) {
  PluginSection out;
  out.where = where(file, table.source());
  out.options = Options(section, base_dir);
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    if (node.is_table()) continue;  // sub-tables are handled by the caller ([metrics.<name>])
    out.options.set(k, to_value(node, file, section, k), where(file, key.source()));
  }
  if (const auto* p = table.get("plugin")) {
    if (!p->is_string())
      throw ConfigError(where(file, p->source()) + ": [" + section + "] plugin: expected a string, found " +
                        type_name(*p));
    out.plugin = p->as_string()->get();
  } else if (!default_plugin.empty()) {
    out.plugin = default_plugin;
  } else {
    throw ConfigError(out.where + ": [" + section + "] has no 'plugin' key: name the " + section +
                      " plugin to use (see 'kgain list'), e.g. plugin = \"...\"");
  }
  out.options.mark("plugin");
  out.name = out.options.get_string("name", out.plugin);
  return out;
}

const toml::table* table_of(const toml::table& root, const std::string& key, const std::string& file) {
  const toml::node* n = root.get(key);
  if (!n) return nullptr;
  if (!n->is_table())
    throw ConfigError(where(file, n->source()) + ": '" + key + "' must be a table ([" + key + "]), found " +
                      type_name(*n));
  return n->as_table();
}

// Writes one plugin section back with its values (for the resolved config).
toml::table options_table(const PluginSection& s) {
  toml::table t;
  t.insert("plugin", s.plugin);
  for (const auto& entry : s.options.values()) {
    const std::string& key = entry.first;  // not a structured binding: lambdas cannot capture those in C++17
    const auto& value = entry.second;
    if (key == "plugin") continue;
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, Options::List>) {
            toml::array a;
            for (const auto& item : v) std::visit([&](const auto& x) { a.push_back(x); }, item);
            t.insert(key, a);
          } else {
            t.insert(key, v);
          }
        },
        value);
  }
  return t;
}

// A top-level plugin table ([dataset], [backbone], [probe]): `plugin` and `name` are core keys.
PluginSection core_plugin_table(const toml::table* table, const std::string& section, const std::string& file,
                                const std::string& base_dir, const std::string& default_plugin, ConfigRecord& record) {
  static const toml::table empty;
  record.note(section, "plugin", default_plugin.empty() ? "" : toml_text(default_plugin));
  record.note(section, "name", "");  // default: the plugin's name
  return plugin_section(table ? *table : empty, section, file, base_dir, default_plugin);
}

// A core key inside a plugin table ([dataset] on_bad_image, [probe] seed): read from the
// plugin's options, so that it is not reported as unknown to the plugin.
std::int64_t core_option(PluginSection& s, const std::string& key, std::int64_t fallback, ConfigRecord& record) {
  record.note(s.options.section(), key, toml_text(fallback));
  return s.options.get_int(key, fallback);
}
std::string core_option(PluginSection& s, const std::string& key, const std::string& fallback, ConfigRecord& record) {
  record.note(s.options.section(), key, toml_text(fallback));
  return s.options.get_string(key, fallback);
}

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
  c.feature_metrics = read_plugin_list(in, t, r, "transferability", "transferability estimator", c.base_dir, record);
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
  std::ifstream in(path);
  if (!in)
    throw ConfigError("cannot read the config file '" + path +
                      "': " + (fs::exists(path) ? "permission denied" : "it does not exist"));
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
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

void check_unread_options(const PluginSection& section, const std::string& kind) {
  const auto unread = section.options.unread_keys();
  if (unread.empty()) return;
  // The keys the plugin asked for, present or not, are the candidates for a typo.
  const std::vector<std::string> candidates = section.options.read_keys();
  const std::string& key = unread.front();
  std::string msg = section.options.where(key) + ": [" + section.options.section() + "] unknown key '" + key +
                    "' for " + kind + " plugin '" + section.plugin + "'";
  if (const auto guess = closest(key, candidates); !guess.empty()) msg += "; did you mean '" + guess + "'?";
  std::string list;
  for (const auto& k : candidates) list += (list.empty() ? "" : ", ") + k;
  throw ConfigError(msg + " Keys it reads: " + list + ".");
}

}  // namespace kgain::core
