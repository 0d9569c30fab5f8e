// Reading a run's splits.csv back (results.hpp writes it): what `kgain compare --paired` checks
// to know that runs tested the same images in the same folds. The reader trusts nothing: a field
// count, fold or role that is not what kgain writes is an error naming the file and line.
// Threads: a free function without shared state.
#pragma once

#include <string>
#include <vector>

namespace kgain::core {

struct SplitRow {
  std::string path;  // lexically normalized ("a/../b" is "b"), so configs in other folders agree
  std::string label, group, dataset_split, role;  // role: train, test or unused
  int fold = 0;
};

// Throws std::runtime_error naming `name` and the line.
std::vector<SplitRow> parse_splits_csv(const std::string& text, const std::string& name);

}  // namespace kgain::core
