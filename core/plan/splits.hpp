// Splits: which images train the probe and which test it, fold by fold.
//
// Pathology sets hold near-copies (tiles of one patient, augmented copies of one source tile),
// so a split must keep each group on one side. The strategies:
//   dataset      the set's own split column: train on "train", test on "test" ("valid" is
//                left out of both, kept for the probe's model selection)
//   kfold        stratified k-fold over images
//   group_kfold  stratified k-fold over groups (scikit-learn's StratifiedGroupKFold algorithm):
//                no group is ever on both sides
//   auto         dataset when every image has a split, else group_kfold when any has a group,
//                else kfold
// All shuffles use kgain's own Fisher-Yates on a seeded mt19937_64, so the same seed gives the
// same folds on every platform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <kgain/dataset.hpp>

namespace kgain::core {

struct Fold {
  std::vector<std::int64_t> train;  // indices into the sample list, ascending
  std::vector<std::int64_t> test;
};

struct SplitPlan {
  std::string strategy;  // the strategy used (auto resolved)
  std::vector<Fold> folds;
};

SplitPlan make_splits(const std::vector<Sample>& samples, int num_classes, const std::string& strategy, int folds,
                      std::uint64_t seed);

// Repeated k-fold: the folds of `repeats` assignments, with seeds seed, seed + 1, ...,
// one after another (fold r * folds + f is fold f of repeat r). The dataset's own split is
// one split and is not repeated.
SplitPlan make_repeated_splits(const std::vector<Sample>& samples, int num_classes, const std::string& strategy,
                               int folds, std::uint64_t seed, int repeats);

// Groups that have images on both sides of a fold (empty when the fold is sound).
std::vector<std::string> leaking_groups(const std::vector<Sample>& samples, const Fold& fold);

// Keeps at most `limit` images per (class, split), chosen by a seeded shuffle; order preserved.
std::vector<Sample> limit_per_class(const std::vector<Sample>& samples, std::int64_t limit, std::uint64_t seed);

// Fisher-Yates with mt19937_64: the same permutation everywhere.
void seeded_shuffle(std::vector<std::int64_t>& v, std::uint64_t seed);

}  // namespace kgain::core
