#include "plan/splits.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>

namespace kgain::core {

void seeded_shuffle(std::vector<std::int64_t>& v, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

namespace {

SplitPlan dataset_split(const std::vector<Sample>& samples) {
  Fold fold;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].split == "train")
      fold.train.push_back(static_cast<std::int64_t>(i));
    else if (samples[i].split == "test")
      fold.test.push_back(static_cast<std::int64_t>(i));
    else if (samples[i].split != "valid")  // an image left out of both sides without a word
      throw std::runtime_error("'" + samples[i].path + "' has " +
                               (samples[i].split.empty() ? "no split" : "the split '" + samples[i].split + "'") +
                               "; the dataset's own split is train, valid or test for every image (or set [splits] "
                               "strategy = \"kfold\" or \"group_kfold\" to ignore it)");
  }
  if (fold.train.empty() || fold.test.empty())
    throw std::runtime_error("the dataset's own split needs images marked 'train' and 'test' (found " +
                             std::to_string(fold.train.size()) + " train, " + std::to_string(fold.test.size()) +
                             " test); use [splits] strategy = \"kfold\" instead");
  return {"dataset", {fold}};
}

SplitPlan stratified_kfold(const std::vector<Sample>& samples, int num_classes, int k, std::uint64_t seed) {
  std::vector<std::vector<std::int64_t>> by_class(num_classes);
  for (std::size_t i = 0; i < samples.size(); ++i) by_class[samples[i].label].push_back(static_cast<std::int64_t>(i));
  std::vector<int> fold_of(samples.size(), 0);
  int next = 0;  // continue the round-robin across classes so fold sizes differ by at most one
  for (int c = 0; c < num_classes; ++c) {
    auto& idx = by_class[c];
    seeded_shuffle(idx, seed + static_cast<std::uint64_t>(c));
    for (auto i : idx) fold_of[i] = next++ % k;
  }
  SplitPlan plan{"kfold", std::vector<Fold>(k)};
  for (std::size_t i = 0; i < samples.size(); ++i)
    for (int f = 0; f < k; ++f)
      (fold_of[i] == f ? plan.folds[f].test : plan.folds[f].train).push_back(static_cast<std::int64_t>(i));
  return plan;
}

// scikit-learn's StratifiedGroupKFold(shuffle=True): groups in a seeded order, then sorted by
// how unbalanced their class distribution is (most first, stable), each given to the fold
// where it keeps the per-class proportions most even across folds (ties: the smallest fold).
SplitPlan stratified_group_kfold(const std::vector<Sample>& samples, int num_classes, int k, std::uint64_t seed) {
  std::map<std::string, std::int64_t> group_id;
  std::vector<std::int64_t> group_of(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const std::string g = samples[i].group.empty() ? "\x01" + samples[i].path : samples[i].group;  // no group: its own
    auto it = group_id.emplace(g, static_cast<std::int64_t>(group_id.size())).first;
    group_of[i] = it->second;
  }
  const std::size_t n_groups = group_id.size();
  if (n_groups < static_cast<std::size_t>(k))
    throw std::runtime_error("group k-fold needs at least as many groups as folds (" + std::to_string(n_groups) +
                             " groups, " + std::to_string(k) + " folds); lower [splits] folds");
  std::vector<std::vector<double>> counts(n_groups, std::vector<double>(num_classes, 0.0));
  std::vector<double> class_total(num_classes, 0.0);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    counts[group_of[i]][samples[i].label] += 1;
    class_total[samples[i].label] += 1;
  }
  std::vector<std::int64_t> order(n_groups);
  std::iota(order.begin(), order.end(), 0);
  seeded_shuffle(order, seed);
  const auto spread = [&](std::int64_t g) {
    double mean = 0, var = 0;
    for (double v : counts[g]) mean += v / num_classes;
    for (double v : counts[g]) var += (v - mean) * (v - mean) / num_classes;
    return std::sqrt(var);
  };
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return spread(a) > spread(b); });

  std::vector<std::vector<double>> fold_counts(k, std::vector<double>(num_classes, 0.0));
  std::vector<int> fold_of_group(n_groups, 0);
  for (auto g : order) {
    int best = -1;
    double best_std = 0, best_size = 0;
    for (int f = 0; f < k; ++f) {
      for (int c = 0; c < num_classes; ++c) fold_counts[f][c] += counts[g][c];
      double mean_std = 0;
      for (int c = 0; c < num_classes; ++c) {
        if (class_total[c] == 0) continue;
        double mean = 0, var = 0;
        for (int ff = 0; ff < k; ++ff) mean += fold_counts[ff][c] / class_total[c] / k;
        for (int ff = 0; ff < k; ++ff) {
          const double d = fold_counts[ff][c] / class_total[c] - mean;
          var += d * d / k;
        }
        mean_std += std::sqrt(var) / num_classes;
      }
      for (int c = 0; c < num_classes; ++c) fold_counts[f][c] -= counts[g][c];
      double size = 0;
      for (double v : fold_counts[f]) size += v;
      if (best < 0 || mean_std < best_std - 1e-12 || (std::abs(mean_std - best_std) <= 1e-12 && size < best_size))
        best = f, best_std = mean_std, best_size = size;
    }
    fold_of_group[g] = best;
    for (int c = 0; c < num_classes; ++c) fold_counts[best][c] += counts[g][c];
  }
  SplitPlan plan{"group_kfold", std::vector<Fold>(k)};
  for (std::size_t i = 0; i < samples.size(); ++i)
    for (int f = 0; f < k; ++f)
      (fold_of_group[group_of[i]] == f ? plan.folds[f].test : plan.folds[f].train)
          .push_back(static_cast<std::int64_t>(i));
  return plan;
}

}  // namespace

SplitPlan make_splits(const std::vector<Sample>& samples, int num_classes, const std::string& strategy, int folds,
                      std::uint64_t seed) {
  if (samples.empty()) throw std::runtime_error("the dataset has no images to split");
  std::string s = strategy;
  if (s == "auto") {
    // Any split at all means the dataset's own: dataset_split then refuses an image without one
    // (a half-filled column, which k-fold over all images would ignore without a word).
    const bool any_split =
        std::any_of(samples.begin(), samples.end(), [](const Sample& x) { return !x.split.empty(); });
    const bool any_group =
        std::any_of(samples.begin(), samples.end(), [](const Sample& x) { return !x.group.empty(); });
    s = any_split ? "dataset" : any_group ? "group_kfold" : "kfold";
  }
  if (s == "dataset") return dataset_split(samples);
  if (s == "kfold") return stratified_kfold(samples, num_classes, folds, seed);
  if (s == "group_kfold") {
    // Asked for by name on images without groups, it would be a per-image k-fold that the user
    // believes keeps patients apart.
    if (std::all_of(samples.begin(), samples.end(), [](const Sample& x) { return x.group.empty(); }))
      throw std::runtime_error(
          "[splits] strategy = \"group_kfold\", but the dataset gives no image a group, so every image would be its "
          "own group (a plain k-fold that does not keep patients apart); give groups (a manifest's group column, "
          "group_pattern, the dataset's patients) or use strategy = \"kfold\"");
    return stratified_group_kfold(samples, num_classes, folds, seed);
  }
  throw std::runtime_error("unknown split strategy '" + strategy + "'");
}

SplitPlan make_repeated_splits(const std::vector<Sample>& samples, int num_classes, const std::string& strategy,
                               int folds, std::uint64_t seed, int repeats) {
  SplitPlan plan = make_splits(samples, num_classes, strategy, folds, seed);
  if (plan.strategy == "dataset") return plan;
  for (int r = 1; r < repeats; ++r) {
    SplitPlan more = make_splits(samples, num_classes, plan.strategy, folds, seed + static_cast<std::uint64_t>(r));
    plan.folds.insert(plan.folds.end(), more.folds.begin(), more.folds.end());
  }
  return plan;
}

std::vector<std::string> leaking_groups(const std::vector<Sample>& samples, const Fold& fold) {
  std::set<std::string> train_groups, leaks;
  for (auto i : fold.train)
    if (!samples[i].group.empty()) train_groups.insert(samples[i].group);
  for (auto i : fold.test)
    if (!samples[i].group.empty() && train_groups.count(samples[i].group)) leaks.insert(samples[i].group);
  return {leaks.begin(), leaks.end()};
}

std::vector<Sample> limit_per_class(const std::vector<Sample>& samples, std::int64_t limit, std::uint64_t seed) {
  if (limit <= 0) return samples;
  std::map<std::pair<int, std::string>, std::vector<std::int64_t>> cells;
  for (std::size_t i = 0; i < samples.size(); ++i)
    cells[{samples[i].label, samples[i].split}].push_back(static_cast<std::int64_t>(i));
  std::vector<bool> keep(samples.size(), false);
  for (auto& [cell, idx] : cells) {
    seeded_shuffle(idx, seed);
    for (std::size_t j = 0; j < idx.size() && static_cast<std::int64_t>(j) < limit; ++j) keep[idx[j]] = true;
  }
  std::vector<Sample> out;
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (keep[i]) out.push_back(samples[i]);
  return out;
}

}  // namespace kgain::core
