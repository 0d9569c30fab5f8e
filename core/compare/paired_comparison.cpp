#include "compare/paired_comparison.hpp"

#include "compare/loaded_run.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "analyse/bootstrap.hpp"
#include "config/config.hpp"
#include "extract/durable_file.hpp"
#include "extract/feature_store.hpp"
#include "write/predictions_file.hpp"
#include "plan/registry.hpp"
#include "runtime/text_file.hpp"
#include "write/results.hpp"
#include "write/json_number.hpp"
#include "write/splits_file.hpp"

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

struct RunScores {
  const std::vector<Predictions>* pretrained = nullptr;
  std::vector<const std::vector<Predictions>*> random;
};

double mean_score(const std::vector<Predictions>& folds, const Metric& metric) {
  double s = 0;
  for (const auto& p : folds) s += metric.score(p) / static_cast<double>(folds.size());
  return s;
}

// Point estimates and bootstrap of every pair of runs at one (probe, metric, tap).
std::vector<PairedRow> compare_at(const std::vector<RunScores>& runs, const Metric& metric, bool shared_draw,
                                  int replicates, double confidence, std::uint64_t seed) {
  const double sign = metric.higher_is_better() ? 1.0 : -1.0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::size_t n = runs.size(), folds = runs[0].pretrained->size();
  std::vector<double> score(n), gain(n, nan);
  for (std::size_t r = 0; r < n; ++r) {
    score[r] = mean_score(*runs[r].pretrained, metric);
    if (runs[r].random.empty()) continue;
    double random = 0;
    for (const auto* s : runs[r].random) random += mean_score(*s, metric) / static_cast<double>(runs[r].random.size());
    gain[r] = sign * (score[r] - random);
  }
  // replicate_score[r][b], replicate_gain[r][b]
  std::vector<std::vector<double>> rep_score(n, std::vector<double>(replicates)),
      rep_gain(n, std::vector<double>(replicates, nan));
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> rows;
  for (int b = 0; b < replicates; ++b) {
    std::vector<std::vector<std::size_t>> seed_draw(n);
    for (std::size_t r = 0; r < n; ++r) {
      if (shared_draw && r > 0) {
        seed_draw[r] = seed_draw[0];
        continue;
      }
      seed_draw[r].resize(runs[r].random.size());
      for (auto& s : seed_draw[r]) s = static_cast<std::size_t>(rng() % runs[r].random.size());
    }
    std::vector<double> pre(n, 0), rnd(n, 0);
    for (std::size_t f = 0; f < folds; ++f) {
      const auto size = static_cast<std::uint64_t>((*runs[0].pretrained)[f].size());
      rows.resize(size);
      for (auto& i : rows) i = static_cast<std::int64_t>(rng() % size);
      for (std::size_t r = 0; r < n; ++r) {
        pre[r] += metric.score(resample((*runs[r].pretrained)[f], rows)) / static_cast<double>(folds);
        for (auto s : seed_draw[r])
          rnd[r] +=
              metric.score(resample((*runs[r].random[s])[f], rows)) / static_cast<double>(folds * seed_draw[r].size());
      }
    }
    for (std::size_t r = 0; r < n; ++r) {
      rep_score[r][b] = pre[r];
      if (!runs[r].random.empty()) rep_gain[r][b] = sign * (pre[r] - rnd[r]);
    }
  }
  std::vector<PairedRow> out;
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t c = a + 1; c < n; ++c) {
      PairedRow row;
      row.run_a = a, row.run_b = c;
      row.score_a = score[a], row.score_b = score[c], row.score_difference = score[a] - score[c];
      row.gain_a = gain[a], row.gain_b = gain[c], row.gain_difference = gain[a] - gain[c];
      std::vector<double> ds, dg;
      for (int b = 0; b < replicates; ++b) {
        ds.push_back(rep_score[a][b] - rep_score[c][b]);
        if (!std::isnan(rep_gain[a][b]) && !std::isnan(rep_gain[c][b])) dg.push_back(rep_gain[a][b] - rep_gain[c][b]);
      }
      const ReplicateSummary sd = summarize_replicates(ds, confidence), gd = summarize_replicates(dg, confidence);
      row.score_low = sd.low, row.score_high = sd.high, row.score_p = sd.p_value;
      row.gain_low = gd.low, row.gain_high = gd.high, row.gain_p = gd.p_value;
      out.push_back(row);
    }
  return out;
}

// Fills score_q and gain_q: one family per (probe, metric, pair of runs), over its taps.
void adjust_over_taps(std::vector<PairedRow>& rows) {
  std::map<std::tuple<std::string, std::string, std::size_t, std::size_t>, std::vector<std::size_t>> families;
  for (std::size_t i = 0; i < rows.size(); ++i)
    families[{rows[i].probe, rows[i].metric, rows[i].run_a, rows[i].run_b}].push_back(i);
  for (const auto& [key, members] : families) {
    std::vector<double> ps, pg;
    for (auto i : members) ps.push_back(rows[i].score_p), pg.push_back(rows[i].gain_p);
    const auto qs = benjamini_hochberg(ps), qg = benjamini_hochberg(pg);
    for (std::size_t k = 0; k < members.size(); ++k) rows[members[k]].score_q = qs[k], rows[members[k]].gain_q = qg[k];
  }
}

}  // namespace

// Benjamini-Hochberg: q_(i) = min over j >= i of p_(j) m / j, p sorted ascending; NaN stays NaN.
std::vector<double> benjamini_hochberg(const std::vector<double>& p) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (!std::isnan(p[i])) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  std::vector<double> q(p.size(), std::numeric_limits<double>::quiet_NaN());
  double running = 1.0;
  const auto m = static_cast<double>(order.size());
  for (std::size_t k = order.size(); k-- > 0;) {
    running = std::min(running, p[order[k]] * m / static_cast<double>(k + 1));
    q[order[k]] = running;
  }
  return q;
}

namespace {

// The runs' labels and settings, once they are known to share images, folds, classes and metrics.
PairedComparison describe_runs(const std::vector<LoadedRun>& runs, const PairedSettings& settings) {
  PairedComparison out;
  const LoadedRun& first = runs.front();
  out.dataset = first.config.dataset.name;
  for (const auto& run : runs) {
    check_same_splits(first, run);
    if (run.metrics_table != first.metrics_table)
      throw std::runtime_error(run.info.dir + " scores with other metrics than " + first.info.dir +
                               " ([metrics] of config.resolved.toml); "
                               "a paired comparison needs the same metrics");
    out.runs.push_back(run.info);
  }
  for (std::size_t a = 0; a < runs.size(); ++a)  // two runs of one name are told apart by their directory
    for (std::size_t b = 0; b < runs.size(); ++b)
      if (a != b && runs[a].info.label == runs[b].info.label) out.runs[a].label = runs[a].info.dir;
  out.replicates = settings.replicates >= 0 ? settings.replicates : first.config.bootstrap;
  out.confidence = settings.confidence > 0 ? settings.confidence : first.config.confidence;
  out.seed = settings.seed;
  return out;
}

std::vector<std::string> random_variants(const RunPredictions& p) {
  std::vector<std::string> r;
  for (const auto& v : p.variants)
    if (v.rfind("random-", 0) == 0) r.push_back(v);
  return r;
}

// The probes every run has, checked for the same taps, test images and a pretrained variant;
// whether the runs' random variants can share one seed draw, and whether they are identical.
void choose_probes(const std::vector<LoadedRun>& runs, PairedComparison& out) {
  const LoadedRun& first = runs.front();
  for (const auto& [probe, p] : first.predictions) {
    bool everywhere = true;
    for (const auto& run : runs) everywhere = everywhere && run.predictions.count(probe);
    if (everywhere) out.probes.push_back(probe);
  }
  if (out.probes.empty())
    throw std::runtime_error("no probe name is common to every run; a paired comparison compares the same probe");
  out.taps = first.predictions.at(out.probes.front()).taps;
  const auto first_random = random_variants(first.predictions.at(out.probes.front()));
  out.shared_random_draw = true;
  for (const auto& run : runs)
    for (const auto& probe : out.probes) {
      const RunPredictions& p = run.predictions.at(probe);
      check_predictions_match_splits(run, p);
      if (p.taps != out.taps)
        throw std::runtime_error(run.info.dir + " has other taps than " + first.info.dir + " (" +
                                 std::to_string(p.taps.size()) + " against " + std::to_string(out.taps.size()) +
                                 "): pairing tap by tap needs one architecture tapped the same way; "
                                 "'kgain compare' without --paired compares backbones by relative depth");
      if (std::find(p.variants.begin(), p.variants.end(), "pretrained") == p.variants.end())
        throw std::runtime_error(
            run.info.dir + " has no pretrained variant (its backbone had no weights): there is nothing to compare");
      check_same_content(first, run, p.image_identities, first.predictions.at(probe).image_identities);
      if (p.test_images != first.predictions.at(probe).test_images)
        throw std::runtime_error(run.info.dir + ": probe '" + probe + "' tested the images in another order than in " +
                                 first.info.dir);
      if (random_variants(p) != first_random) out.shared_random_draw = false;
    }
  out.identical_random_baselines = out.shared_random_draw && !first_random.empty();
  for (const auto& run : runs)
    for (const auto& probe : out.probes) {
      const RunPredictions &p = run.predictions.at(probe), &q = first.predictions.at(probe);
      for (std::size_t v = 0; v < p.variants.size() && out.identical_random_baselines; ++v)
        for (std::size_t t = 0; p.variants[v] != "pretrained" && t < p.taps.size(); ++t)
          for (std::size_t f = 0; f < p.test_images.size(); ++f)
            if (p.predictions[v][t][f].scores != q.predictions[v][t][f].scores) out.identical_random_baselines = false;
    }
}

// One task per (probe, metric, tap), each with its own seed, on `threads` workers; the first
// exception (from a metric plugin) stops them and is rethrown here.
void compare_all(const std::vector<LoadedRun>& runs, const std::vector<std::shared_ptr<Metric>>& metrics, int threads,
                 PairedComparison& out) {
  const std::size_t per_probe = out.metrics.size() * out.taps.size(), tasks = out.probes.size() * per_probe;
  std::vector<std::vector<PairedRow>> results(tasks);
  std::atomic<std::size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  const auto one = [&](std::size_t task) {
    const std::size_t p = task / per_probe, m = task % per_probe / out.taps.size(), t = task % out.taps.size();
    std::vector<RunScores> scores;
    for (const auto& run : runs) {
      const RunPredictions& pred = run.predictions.at(out.probes[p]);
      RunScores s;
      for (std::size_t v = 0; v < pred.variants.size(); ++v) {
        if (pred.variants[v] == "pretrained")
          s.pretrained = &pred.predictions[v][t];
        else if (pred.variants[v].rfind("random-", 0) == 0)
          s.random.push_back(&pred.predictions[v][t]);
      }
      scores.push_back(s);
    }
    results[task] = compare_at(scores, *metrics[m], out.shared_random_draw, out.replicates, out.confidence,
                               out.seed * 1000003ULL + task);
    for (auto& row : results[task])
      row.probe = out.probes[p], row.metric = out.metrics[m], row.tap_index = t, row.tap = out.taps[t];
  };
  const auto work = [&] {
    try {
      for (std::size_t task = next++; task < tasks; task = next++) one(task);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      next = tasks;
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < std::max(1, threads); ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (first_error) std::rethrow_exception(first_error);
  for (auto& r : results) out.rows.insert(out.rows.end(), r.begin(), r.end());
}

}  // namespace

PairedComparison compare_runs(const std::vector<std::string>& run_dirs, const PairedSettings& settings) {
  if (run_dirs.size() < 2) throw std::runtime_error("a paired comparison needs at least two run directories");
  std::vector<LoadedRun> runs;
  for (const auto& dir : run_dirs) runs.push_back(load_run(dir));
  PairedComparison out = describe_runs(runs, settings);
  // The metrics as the runs scored with them (the same [metrics] in every run, checked above).
  std::vector<std::string> paths = settings.plugin_paths;
  for (const auto& run : runs)
    paths.insert(paths.end(), run.config.plugin_paths.begin(), run.config.plugin_paths.end());
  const Registry registry = load_registry(paths);
  std::vector<std::shared_ptr<Metric>> metrics;
  for (const auto& m : runs.front().config.metrics) {
    metrics.push_back(registry.create<Metric>(m));
    out.metrics.push_back(m.name);
    out.higher_is_better.push_back(metrics.back()->higher_is_better());
  }
  choose_probes(runs, out);
  compare_all(runs, metrics, settings.threads, out);
  adjust_over_taps(out.rows);
  return out;
}

}  // namespace kgain::core
