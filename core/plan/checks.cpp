#include "plan/checks.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include <spdlog/spdlog.h>

namespace kgain::core {

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

void check_groups(const std::vector<Sample>& samples, const SplitPlan& plan) {
  for (std::size_t f = 0; f < plan.folds.size(); ++f)
    if (const auto leaks = leaking_groups(samples, plan.folds[f]); !leaks.empty())
      throw std::runtime_error(
          "fold " + std::to_string(f) + " puts group '" + leaks.front() + "' (and " + std::to_string(leaks.size() - 1) +
          " more) on both sides; the dataset's split column mixes groups — use [splits] strategy = \"group_kfold\"");
}

void check_duplicate_content(const std::vector<Sample>& samples, const std::vector<std::uint64_t>& identities,
                             const SplitPlan& plan) {
  std::vector<char> used(samples.size(), 0);
  for (const auto& fold : plan.folds)
    for (const auto* side : {&fold.train, &fold.test})
      for (auto i : *side) used[static_cast<std::size_t>(i)] = 1;
  std::unordered_map<std::uint64_t, std::size_t> first;
  std::vector<std::pair<std::size_t, std::size_t>> duplicates;
  for (std::size_t i = 0; i < identities.size(); ++i)
    if (used[i])
      if (const auto [it, fresh] = first.emplace(identities[i], i); !fresh) duplicates.emplace_back(it->second, i);
  if (duplicates.empty()) return;
  for (std::size_t f = 0; f < plan.folds.size(); ++f) {
    std::vector<char> side(samples.size(), 0);
    for (auto i : plan.folds[f].train) side[static_cast<std::size_t>(i)] = 'r';
    for (auto i : plan.folds[f].test) side[static_cast<std::size_t>(i)] = 'e';
    for (const auto& [a, b] : duplicates)
      if (side[a] && side[b] && side[a] != side[b])
        throw std::runtime_error(samples[a].path + " and " + samples[b].path + " have the same content, and fold " +
                                 std::to_string(f) +
                                 " trains on one and tests on the other, which would inflate every score (" +
                                 std::to_string(duplicates.size()) +
                                 " duplicate pair(s) in all): remove the duplicates, or give each pair the same group");
  }
  spdlog::warn("{} pair(s) of images have the same content (first: {} and {}); no fold puts a pair on both sides",
               duplicates.size(), samples[duplicates.front().first].path, samples[duplicates.front().second].path);
}

}  // namespace kgain::core
