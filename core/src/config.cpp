#include "kgain/core/config.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

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

// Reads the keys of one core section, checking types and reporting unknown keys.
class SectionReader {
 public:
  SectionReader(const toml::table& table, std::string section, std::string file, std::vector<std::string>& all_known)
      : table_(table), section_(std::move(section)), file_(std::move(file)), all_known_(all_known) {}

  const toml::node* get(const std::string& key) {
    known_.push_back(key);
    all_known_.push_back(section_ + "." + key);
    return table_.get(key);
  }
  [[noreturn]] void fail(const std::string& key, const toml::node& node, const std::string& problem) const {
    throw ConfigError(where(file_, node.source()) + ": [" + section_ + "] " + key + ": " + problem);
  }
  void expect(const std::string& key, const toml::node& node, bool ok, const std::string& expected) const {
    if (!ok) fail(key, node, "expected " + expected + ", found " + type_name(node));
  }
  double number(const std::string& key, double fallback, double min, double max) {
    const toml::node* n = get(key);
    if (!n) return fallback;
    expect(key, *n, n->is_number(), "a number");
    const double v = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
    if (!(v >= min && v <= max))
      fail(key, *n, "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (received " + std::to_string(v) + ")");
    return v;
  }
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
    const toml::node* n = get(key);
    if (!n) return fallback;
    expect(key, *n, n->is_integer(), "an integer");
    const std::int64_t v = n->as_integer()->get();
    if (v < min || v > max)
      fail(key, *n, "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (received " + std::to_string(v) + ")");
    return v;
  }
  std::string string(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed = {}) {
    const toml::node* n = get(key);
    if (!n) return fallback;
    expect(key, *n, n->is_string(), "a string");
    std::string v = n->as_string()->get();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "\"" : ", \"") + a + "\"";
      fail(key, *n, "must be one of " + list + " (received \"" + v + "\")");
    }
    return v;
  }
  bool boolean(const std::string& key, bool fallback) {
    const toml::node* n = get(key);
    if (!n) return fallback;
    expect(key, *n, n->is_boolean(), "true or false");
    return n->as_boolean()->get();
  }
  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& fallback) {
    const toml::node* n = get(key);
    if (!n) return fallback;
    expect(key, *n, n->is_array(), "an array of strings");
    std::vector<std::string> out;
    for (const auto& item : *n->as_array()) {
      expect(key, item, item.is_string(), "an array of strings");
      out.push_back(item.as_string()->get());
    }
    return out;
  }
  std::vector<std::uint64_t> seeds(const std::string& key, const std::vector<std::uint64_t>& fallback) {
    const toml::node* n = get(key);
    if (!n) return fallback;
    expect(key, *n, n->is_array(), "an array of non-negative integers");
    std::vector<std::uint64_t> out;
    for (const auto& item : *n->as_array()) {
      expect(key, item, item.is_integer() && item.as_integer()->get() >= 0, "an array of non-negative integers");
      out.push_back(static_cast<std::uint64_t>(item.as_integer()->get()));
    }
    return out;
  }
  // The node of a key read before (for messages about its value).
  const toml::node* node(const std::string& key) const { return table_.get(key); }
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
  const toml::table& table_;
  std::string section_;
  std::string file_;
  std::vector<std::string> known_;
  std::vector<std::string>& all_known_;
};

// A plugin option that is nan or inf is always a mistake, and a plugin that compares it
// against a range would let it through (every comparison with NaN is false).
double finite_number(const toml::node& node, const std::string& file, const std::string& section, const std::string& key) {
  const double v = node.as_floating_point()->get();
  if (!std::isfinite(v))
    throw ConfigError(where(file, node.source()) + ": [" + section + "] " + key + ": must be a finite number (received " + std::to_string(v) + ")");
  return v;
}

// Each name of a list may appear once (a metric listed twice would be scored twice under one name).
void require_unique(const std::vector<std::string>& names, const SectionReader& r, const std::string& key, const std::string& what) {
  std::set<std::string> seen;
  for (const auto& n : names)
    if (!seen.insert(n).second) r.fail(key, *r.node(key), "the " + what + " '" + n + "' is listed twice");
}

Options::Value to_value(const toml::node& node, const std::string& file, const std::string& section, const std::string& key) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return i->get();
  if (node.is_floating_point()) return finite_number(node, file, section, key);
  if (auto b = node.as_boolean()) return b->get();
  if (auto a = node.as_array()) {
    Options::List list;
    for (const auto& item : *a) {
      if (auto s = item.as_string()) list.emplace_back(s->get());
      else if (auto i = item.as_integer()) list.emplace_back(i->get());
      else if (item.is_floating_point()) list.emplace_back(finite_number(item, file, section, key));
      else if (auto b = item.as_boolean()) list.emplace_back(b->get());
      else
        throw ConfigError(where(file, item.source()) + ": [" + section + "] " + key +
                          ": arrays of plugin options hold strings, numbers or booleans, found " + type_name(item));
    }
    return list;
  }
  throw ConfigError(where(file, node.source()) + ": [" + section + "] " + key + ": plugin options are strings, numbers, booleans or arrays, found " +
                    type_name(node));
}

// A plugin table: `plugin` names the plugin, `name` labels it in results; `core_keys` are read
// by the core (their values are left in the options, marked as read).
PluginSection plugin_section(const toml::table& table, const std::string& section, const std::string& file,
                             const std::string& base_dir, const std::string& default_plugin = {}) {
  PluginSection out;
  out.where = where(file, table.source());
  out.options = Options(section, base_dir);
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    if (node.is_table()) continue;  // sub-tables are handled by the caller ([metrics.<name>])
    out.options.set(k, to_value(node, file, section, k), where(file, key.source()));
  }
  if (const auto* p = table.get("plugin")) {
    if (!p->is_string()) throw ConfigError(where(file, p->source()) + ": [" + section + "] plugin: expected a string, found " + type_name(*p));
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
  if (!n->is_table()) throw ConfigError(where(file, n->source()) + ": '" + key + "' must be a table ([" + key + "]), found " + type_name(*n));
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

}  // namespace

namespace {
const std::vector<std::pair<Pooling, std::string>> pooling_names = {{Pooling::avg, "avg"}, {Pooling::max, "max"},
                                                                    {Pooling::avgmax, "avgmax"}, {Pooling::cls, "cls"},
                                                                    {Pooling::mean, "mean"}, {Pooling::cls_mean, "cls_mean"}};
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
  if (!in) throw ConfigError("cannot read the config file '" + path + "': " + (fs::exists(path) ? "permission denied" : "it does not exist"));
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

  Config c;
  c.file = path;
  std::error_code ec;
  c.base_dir = fs::absolute(fs::path(path).parent_path(), ec).lexically_normal().string();
  if (!c.base_dir.empty() && c.base_dir.back() == '/') c.base_dir.pop_back();

  static const std::vector<std::string> sections{"run", "dataset", "backbone", "features", "variants", "splits", "probe", "metrics", "transferability", "analysis"};
  for (const auto& [key, node] : root) {
    const std::string k(key.str());
    if (std::find(sections.begin(), sections.end(), k) != sections.end()) continue;
    std::string msg = where(path, key.source()) + ": unknown section '" + k + "'";
    if (const auto guess = closest(k, sections); !guess.empty()) msg += "; did you mean [" + guess + "]?";
    throw ConfigError(msg + " Sections: [run], [dataset], [backbone], [features], [variants], [splits], [probe], [metrics], [transferability], [analysis].");
  }

  const toml::table empty;
  {
    const toml::table* t = table_of(root, "run", path);
    SectionReader r(t ? *t : empty, "run", path, c.known_keys);
    c.name = r.string("name", fs::path(path).stem().string());
    // The name becomes a folder under runs/: one plain path component.
    if (c.name.empty() || c.name == "." || c.name == ".." || c.name.find_first_of(std::string("/\\\0", 3)) != std::string::npos ||
        std::any_of(c.name.begin(), c.name.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20; }))
      throw ConfigError(where(path, t && t->get("name") ? t->get("name")->source() : toml::source_region{}) + ": [run] name: '" + c.name +
                        "' cannot name a run folder (it must be non-empty, not '.' or '..', without '/', '\\' or control characters)");
    // A resolved config written into a run directory keeps the original config's directory.
    c.base_dir = r.string("config_dir", c.base_dir);
    c.threads = static_cast<int>(r.integer("threads", 0, 0, 1024));
    c.batch_size = r.integer("batch_size", 32, 1, 4096);
    c.decode_threads = static_cast<int>(r.integer("decode_threads", 0, 0, 256));
    c.plugin_paths = r.strings("plugin_paths", {});
    for (auto& p : c.plugin_paths)
      if (!p.empty() && p.front() != '/') p = c.base_dir + "/" + p;
    c.feature_store = r.string("feature_store", "");
    if (!c.feature_store.empty() && c.feature_store.front() != '/') c.feature_store = c.base_dir + "/" + c.feature_store;
    r.check_unknown();
  }
  {
    const toml::table* t = table_of(root, "dataset", path);
    if (!t) throw ConfigError(path + ": the config has no [dataset] table: add one naming a dataset plugin, e.g.\n[dataset]\nplugin = \"manifest\"\nroot = \"../shared/data/pcam-mini\"");
    c.dataset = plugin_section(*t, "dataset", path, c.base_dir);
    c.limit_per_class = c.dataset.options.get_int("limit_per_class", 0);
    const std::string on_bad = c.dataset.options.get_string("on_bad_image", "fail");
    if (on_bad != "fail" && on_bad != "skip")
      throw ConfigError(c.dataset.options.where("on_bad_image") + ": [dataset] on_bad_image: must be \"fail\" or \"skip\" (received \"" + on_bad + "\")");
    c.skip_bad_images = on_bad == "skip";
    if (c.limit_per_class < 0) throw ConfigError(c.dataset.options.where("limit_per_class") + ": [dataset] limit_per_class: must be 0 (every image) or positive (received " + std::to_string(c.limit_per_class) + ")");
  }
  {
    const toml::table* t = table_of(root, "backbone", path);
    if (!t) throw ConfigError(path + ": the config has no [backbone] table: add one naming a backbone plugin, e.g.\n[backbone]\nplugin = \"torchscript\"\nfile = \"model.ts.pt\"");
    c.backbone = plugin_section(*t, "backbone", path, c.base_dir);
  }
  {
    const toml::table* t = table_of(root, "features", path);
    SectionReader r(t ? *t : empty, "features", path, c.known_keys);
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
    c.stain_reference = r.string("stain_reference", "");
    if (!c.stain_reference.empty() && c.stain_reference.front() != '/') c.stain_reference = c.base_dir + "/" + c.stain_reference;
    if (c.stain_normalization != "none" && c.stain_reference.empty())
      throw ConfigError(where(path, t ? t->source() : toml::source_region{}) + ": [features] stain_normalization = \"" + c.stain_normalization +
                        "\" needs stain_reference = \"path/to/reference-tile.png\" (a well-stained tile from the target lab)");
    if (!c.stain_reference.empty() && !std::filesystem::is_regular_file(c.stain_reference))
      throw ConfigError(where(path, t->get("stain_reference")->source()) + ": [features] stain_reference: the file '" +
                        c.stain_reference + "' does not exist");
    r.check_unknown();
  }
  {
    const toml::table* t = table_of(root, "variants", path);
    SectionReader r(t ? *t : empty, "variants", path, c.known_keys);
    c.random_seeds = r.seeds("random_seeds", {0, 1, 2});
    if (c.random_seeds.empty())
      throw ConfigError(where(path, t->get("random_seeds")->source()) +
                        ": [variants] random_seeds: needs at least one seed, since the knowledge gain is measured against random weights");
    std::set<std::uint64_t> unique(c.random_seeds.begin(), c.random_seeds.end());
    if (unique.size() != c.random_seeds.size())
      throw ConfigError(where(path, t->get("random_seeds")->source()) + ": [variants] random_seeds: a seed is listed twice");
    c.recalibrate_batch_norm = r.boolean("recalibrate_batch_norm", false);
    c.calibration_images = r.integer("calibration_images", 256, 1, 100000);
    r.check_unknown();
  }
  {
    const toml::table* t = table_of(root, "splits", path);
    SectionReader r(t ? *t : empty, "splits", path, c.known_keys);
    c.split_strategy = r.string("strategy", "auto", {"auto", "dataset", "kfold", "group_kfold"});
    c.folds = static_cast<int>(r.integer("folds", 5, 2, 100));
    c.split_seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0, INT64_MAX));
    c.split_repeats = static_cast<int>(r.integer("repeats", 1, 1, 100));
    r.check_unknown();
  }
  {
    // One [probe] table, or several [[probe]] tables.
    std::vector<const toml::table*> tables;
    if (const toml::node* n = root.get("probe"); n && n->is_array_of_tables()) {
      for (const auto& item : *n->as_array()) tables.push_back(item.as_table());
    } else {
      tables.push_back(table_of(root, "probe", path));
    }
    for (const toml::table* t : tables) {
      PluginSection s = plugin_section(t ? *t : empty, "probe", path, c.base_dir, "logistic");
      const std::int64_t seed = s.options.get_int("seed", 0);
      if (seed < 0) throw ConfigError(s.options.where("seed") + ": [probe] seed: must be 0 or positive (received " + std::to_string(seed) + ")");
      for (const auto& other : c.probes)
        if (other.name == s.name)
          throw ConfigError(s.where + ": two probes are named '" + s.name + "': give each [[probe]] a distinct name = \"...\"");
      c.probe_seeds.push_back(static_cast<std::uint64_t>(seed));
      c.probes.push_back(std::move(s));
    }
  }
  {
    const toml::table* t = table_of(root, "metrics", path);
    SectionReader r(t ? *t : empty, "metrics", path, c.known_keys);
    const auto names = r.strings("names", {"accuracy", "balanced_accuracy", "macro_f1"});
    if (names.empty()) throw ConfigError(where(path, t->get("names")->source()) + ": [metrics] names: list at least one metric, e.g. [\"accuracy\"]");
    require_unique(names, r, "names", "metric");
    for (const auto& n : names) {
      const toml::table* sub = t ? table_of(*t, n, path) : nullptr;
      PluginSection s = plugin_section(sub ? *sub : empty, "metrics." + n, path, c.base_dir, n);
      if (!sub) s.where = t && t->get("names") ? where(path, t->get("names")->source()) : path;
      c.metrics.push_back(std::move(s));
      r.get(n);  // a [metrics.<name>] table is known
      c.known_keys.pop_back();
    }
    r.check_unknown();
  }

  {
    const toml::table* t = table_of(root, "transferability", path);
    SectionReader r(t ? *t : empty, "transferability", path, c.known_keys);
    const auto names = r.strings("names", {"logme", "hscore", "hscore_shrinkage", "transrate", "gbc"});
    require_unique(names, r, "names", "estimator");
    for (const auto& n : names) {
      const toml::table* sub = t ? table_of(*t, n, path) : nullptr;
      PluginSection s = plugin_section(sub ? *sub : empty, "transferability." + n, path, c.base_dir, n);
      if (!sub) s.where = t && t->get("names") ? where(path, t->get("names")->source()) : path;
      c.feature_metrics.push_back(std::move(s));
      r.get(n);
      c.known_keys.pop_back();
    }
    c.cka = r.boolean("cka", true);
    c.source_transferability = r.boolean("source", false);
    r.check_unknown();
  }
  {
    const toml::table* t = table_of(root, "analysis", path);
    SectionReader r(t ? *t : empty, "analysis", path, c.known_keys);
    c.bootstrap = static_cast<int>(r.integer("bootstrap", 1000, 0, 1000000));
    c.confidence = r.number("confidence", 0.95, 0.5, 0.999);
    c.analysis_seed = static_cast<std::uint64_t>(r.integer("seed", 0, 0, INT64_MAX));
    c.sweet_spot_epsilon = r.number("sweet_spot_epsilon", 0.0, 0.0, 1e9);
    c.save_predictions = r.boolean("save_predictions", true);
    r.check_unknown();
  }
  for (const char* key : {"dataset.plugin", "dataset.name", "dataset.limit_per_class", "dataset.on_bad_image", "backbone.plugin", "backbone.name",
                          "probe.plugin", "probe.seed"})
    c.known_keys.push_back(key);

  // The resolved config: every default written out.
  toml::table resolved;
  toml::array plugin_paths, seeds, metric_names;
  for (const auto& p : c.plugin_paths) plugin_paths.push_back(p);
  for (auto s : c.random_seeds) seeds.push_back(static_cast<std::int64_t>(s));
  resolved.insert("run", toml::table{{"name", c.name}, {"config_dir", c.base_dir}, {"threads", c.threads}, {"batch_size", c.batch_size},
                                     {"decode_threads", c.decode_threads}, {"feature_store", c.feature_store},
                                     {"plugin_paths", plugin_paths}});
  resolved.insert("dataset", options_table(c.dataset));
  resolved.insert("backbone", options_table(c.backbone));
  toml::table features{{"input_size", c.input_size}, {"resize", c.resize}, {"pooling", to_string(c.pooling)},
                       {"stain_normalization", c.stain_normalization}, {"storage", c.storage}};
  if (!c.stain_reference.empty()) features.insert("stain_reference", c.stain_reference);
  resolved.insert("features", features);
  resolved.insert("variants", toml::table{{"random_seeds", seeds}, {"recalibrate_batch_norm", c.recalibrate_batch_norm},
                                          {"calibration_images", c.calibration_images}});
  resolved.insert("splits", toml::table{{"strategy", c.split_strategy}, {"folds", c.folds}, {"seed", static_cast<std::int64_t>(c.split_seed)}, {"repeats", c.split_repeats}});
  if (c.probes.size() == 1) {
    resolved.insert("probe", options_table(c.probes.front()));
  } else {
    toml::array probes;
    for (const auto& p : c.probes) probes.push_back(options_table(p));
    resolved.insert("probe", probes);
  }
  toml::table metrics;
  for (const auto& m : c.metrics) {
    metric_names.push_back(m.plugin);
    if (m.options.values().size() > 1) metrics.insert(m.plugin, options_table(m));
  }
  metrics.insert("names", metric_names);
  resolved.insert("metrics", metrics);
  toml::table transferability;
  toml::array feature_metric_names;
  for (const auto& m : c.feature_metrics) {
    feature_metric_names.push_back(m.plugin);
    if (m.options.values().size() > 1) transferability.insert(m.plugin, options_table(m));
  }
  transferability.insert("names", feature_metric_names);
  transferability.insert("cka", c.cka);
  transferability.insert("source", c.source_transferability);
  resolved.insert("transferability", transferability);
  resolved.insert("analysis", toml::table{{"bootstrap", c.bootstrap}, {"confidence", c.confidence},
                                          {"seed", static_cast<std::int64_t>(c.analysis_seed)}, {"sweet_spot_epsilon", c.sweet_spot_epsilon},
                                          {"save_predictions", c.save_predictions}});
  std::ostringstream out;
  out << resolved;
  c.resolved_toml = out.str();
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
    const toml::table a = toml::parse(with_todays_defaults(resolved_a)), b = toml::parse(with_todays_defaults(resolved_b));
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
  std::string msg = section.options.where(key) + ": [" + section.options.section() + "] unknown key '" + key + "' for " + kind +
                    " plugin '" + section.plugin + "'";
  if (const auto guess = closest(key, candidates); !guess.empty()) msg += "; did you mean '" + guess + "'?";
  std::string list;
  for (const auto& k : candidates) list += (list.empty() ? "" : ", ") + k;
  throw ConfigError(msg + " Keys it reads: " + list + ".");
}

}  // namespace kgain::core
