// DataSummary: a dataset as kgain sees it, for `kgain data`: classes and counts, groups, the
// split per class, image sizes and unreadable files, with warnings for leaks and empty classes.
#pragma once

#include <string>
#include <vector>

#include <kgain/dataset.hpp>

#include "plan/splits.hpp"

namespace kgain::core {

// The text report. `check_images` decodes every image (sizes, bad files); that reads the
// whole set once, through `pixel_source` for a dataset that keeps its pixels itself.
std::string describe_dataset(const std::string& description, const std::vector<std::string>& classes,
                             const std::vector<Sample>& samples, const SplitPlan& plan, bool check_images,
                             const Dataset* pixel_source = nullptr);

}  // namespace kgain::core
