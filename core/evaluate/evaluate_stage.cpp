#include "evaluate/evaluate_stage.hpp"

#include <algorithm>
#include <numeric>
#include <set>

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "cluster/cluster.hpp"
#include "cluster/wire.hpp"
#include "extract/extract_stage.hpp"
#include "plan/study_plan.hpp"
#include "runtime/allocator.hpp"
#include "runtime/progress.hpp"

namespace kgain::core {
namespace {

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
// `scores` and lists the taps it did in `mine`; the stage then puts them together on root.
void evaluate_taps_of_rank(const Config& config, const StudyPlan& plan, const EvaluationSetup& setup,
                           const Extraction& extraction, Scores& scores, std::vector<std::size_t>& mine) {
  const int threads = setup.threads;
  std::vector<Evaluation>& evaluations = scores.evaluations;
  evaluations = start_evaluation(setup);
  const std::size_t fits_per_tap = plan.probes.size() * plan.splits.folds.size();  // of one variant
  const std::size_t tasks = tasks_per_tap(setup);  // fewer when a probe fits its folds together
  const std::size_t group = std::max<std::size_t>(1, (static_cast<std::size_t>(threads) + tasks - 1) / tasks);
  const bool with_estimates = plan.backbone->has_pretrained_weights() && (!plan.estimators.empty() || config.cka);
  const std::vector<std::int64_t> rows = usable_rows(plan, extraction.stats.bad_images);
  const at::Tensor usable = at::tensor(rows, at::kLong);
  std::vector<std::int64_t> usable_labels;
  for (auto i : rows) usable_labels.push_back(plan.labels[static_cast<std::size_t>(i)]);
  // The pretrained variant first, so that CKA can compare each random variant with it as it passes.
  std::vector<std::size_t> order(plan.variants.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_partition(order.begin(), order.end(),
                        [&](std::size_t v) { return plan.variants[v].kind == Variant::Kind::pretrained; });
  const Cluster& cluster = Cluster::get();
  Progress progress("probes", "fits",
                    static_cast<std::int64_t>(fits_per_tap * plan.variants.size() * plan.taps.size()));
  for (std::size_t first = 0, g = 0; first < plan.taps.size(); first += group, ++g) {
    if (static_cast<int>(g % static_cast<std::size_t>(cluster.size())) != cluster.rank()) continue;
    std::vector<std::size_t> taps;
    for (std::size_t t = first; t < std::min(plan.taps.size(), first + group); ++t) taps.push_back(t);
    std::vector<std::vector<double>> cka(taps.size());  // [k][random variant]
    std::vector<std::vector<std::vector<double>>> estimates_of(
        taps.size(), std::vector<std::vector<double>>(plan.variants.size()));  // [k][v][m]
    std::vector<at::Tensor> pretrained;                                        // usable rows, kept for CKA
    for (std::size_t v : order) {
      std::vector<at::Tensor> features;  // [k]
      for (std::size_t t : taps)
        features.push_back(
            load_tap(extraction.spaces[v], t, plan.identities, extraction.stats.bad_images, plan.samples));
      evaluate_taps(setup, taps, v, features, evaluations, progress);
      if (!with_estimates) {
        features.clear();
        return_free_memory();  // before the next variant's features (allocator.hpp)
        continue;
      }
      for (auto& x : features) x = rows.size() == plan.samples.size() ? x : x.index_select(0, usable);
      const auto estimates = score_estimators(features, usable_labels, static_cast<std::int64_t>(plan.classes.size()),
                                              plan.estimators, threads);
      for (std::size_t k = 0; k < taps.size(); ++k) estimates_of[k][v] = estimates[k];
      if (!config.cka) continue;
      if (plan.variants[v].kind == Variant::Kind::pretrained) {
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
    for (std::size_t k = 0; with_estimates && k < taps.size(); ++k)
      for (auto& r : transferability_rows(taps[k], plan.tap_names[taps[k]], plan.variants, plan.estimators,
                                          estimates_of[k], config.cka, cka[k]))
        scores.transferability.push_back(std::move(r));
    mine.insert(mine.end(), taps.begin(), taps.end());
    spdlog::debug("taps {}-{} evaluated", taps.front(), taps.back());
  }
}

// Root collects the other ranks' taps (gather_evaluations); then the rows take their fixed order.
void finish_evaluation(const EvaluationSetup& setup, Scores& scores, const std::vector<std::size_t>& mine) {
  if (Cluster::get().distributed()) gather_evaluations(setup, mine, scores.evaluations, scores.transferability);
  for (auto& e : scores.evaluations) {
    e.finish();
    scores.rows.insert(scores.rows.end(), e.rows.begin(), e.rows.end());
  }
}

}  // namespace

std::vector<std::int64_t> usable_rows(const StudyPlan& plan, const std::vector<BadImage>& bad_images) {
  std::set<std::int64_t> bad;
  for (const auto& b : bad_images) bad.insert(b.index);
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < plan.samples.size(); ++i)
    if (!bad.count(static_cast<std::int64_t>(i))) rows.push_back(static_cast<std::int64_t>(i));
  return rows;
}

Scores evaluate_stage(const Config& config, const StudyPlan& plan, const Extraction& extraction) {
  const EvaluationSetup setup{
      plan.variants, plan.tap_names, plan.labels,  static_cast<std::int64_t>(plan.classes.size()),
      plan.splits,   plan.probes,    plan.metrics, at::get_num_threads()};
  Scores scores;
  std::vector<std::size_t> mine;  // the taps this rank evaluated
  Cluster::get().together([&] { evaluate_taps_of_rank(config, plan, setup, extraction, scores, mine); });
  finish_evaluation(setup, scores, mine);
  return scores;
}

}  // namespace kgain::core
