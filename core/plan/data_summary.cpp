#include "plan/data_summary.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "images/image.hpp"

namespace kgain::core {

namespace {

// Images and groups per class, group sizes, and the dataset's own split.
void describe_classes(std::ostream& out, const std::vector<std::string>& classes, const std::vector<Sample>& samples,
                      std::vector<std::string>& warnings) {
  std::map<int, std::int64_t> per_class;
  std::map<int, std::set<std::string>> groups_per_class;
  std::map<std::string, std::int64_t> group_size, per_split;
  for (const auto& s : samples) {
    per_class[s.label] += 1;
    if (!s.group.empty()) groups_per_class[s.label].insert(s.group), group_size[s.group] += 1;
    if (!s.split.empty()) per_split[s.split] += 1;
  }
  char line[256];
  std::snprintf(line, sizeof line, "%-28s %8s %8s\n", "class", "images", "groups");
  out << line;
  for (std::size_t c = 0; c < classes.size(); ++c) {
    std::snprintf(line, sizeof line, "%-28s %8lld %8zu\n", classes[c].c_str(),
                  static_cast<long long>(per_class[static_cast<int>(c)]), groups_per_class[static_cast<int>(c)].size());
    out << line;
    if (per_class[static_cast<int>(c)] == 0) warnings.push_back("class '" + classes[c] + "' has no images");
  }
  if (!group_size.empty()) {
    std::vector<std::int64_t> sizes;
    for (const auto& [g, n] : group_size) sizes.push_back(n);
    std::sort(sizes.begin(), sizes.end());
    out << "\ngroups: " << group_size.size() << ", images per group: min " << sizes.front() << ", median "
        << sizes[sizes.size() / 2] << ", max " << sizes.back() << "\n";
    std::map<std::string, std::set<int>> classes_of_group;
    for (const auto& s : samples)
      if (!s.group.empty()) classes_of_group[s.group].insert(s.label);
    std::size_t mixed = 0;
    for (const auto& [g, c] : classes_of_group) mixed += c.size() > 1;
    if (mixed) out << mixed << " groups hold images of more than one class\n";
  } else {
    out << "\nno groups: every image is its own group\n";
  }
  if (!per_split.empty()) {
    out << "own split:";
    for (const auto& [split, n] : per_split) out << ' ' << split << ' ' << n;
    out << "\n";
  }
}

// Training and test images per fold and class; a class missing from a side, a group on both.
void describe_split(std::ostream& out, const std::vector<std::string>& classes, const std::vector<Sample>& samples,
                    const SplitPlan& plan, std::vector<std::string>& warnings) {
  std::map<int, std::int64_t> per_class;
  for (const auto& s : samples) per_class[s.label] += 1;
  out << "\nsplit: " << plan.strategy << ", " << plan.folds.size() << " fold" << (plan.folds.size() == 1 ? "" : "s")
      << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-6s %-28s %8s %8s\n", "fold", "class", "train", "test");
  out << line;
  for (std::size_t f = 0; f < plan.folds.size(); ++f) {
    std::map<int, std::int64_t> train, test;
    for (auto i : plan.folds[f].train) train[samples[i].label] += 1;
    for (auto i : plan.folds[f].test) test[samples[i].label] += 1;
    for (std::size_t c = 0; c < classes.size(); ++c) {
      const int k = static_cast<int>(c);
      std::snprintf(line, sizeof line, "%-6zu %-28s %8lld %8lld\n", f, classes[c].c_str(),
                    static_cast<long long>(train[k]), static_cast<long long>(test[k]));
      out << line;
      if (per_class[k] > 0 && (train[k] == 0 || test[k] == 0))
        warnings.push_back("fold " + std::to_string(f) + " has no " + (train[k] == 0 ? "training" : "test") +
                           " image of class '" + classes[c] + "'");
    }
    const auto leaks = leaking_groups(samples, plan.folds[f]);
    if (!leaks.empty())
      warnings.push_back("fold " + std::to_string(f) + " puts " + std::to_string(leaks.size()) +
                         " group(s) on both sides (e.g. '" + leaks.front() + "'): scores would be inflated");
  }
}

// Image sizes and unreadable files, decoded with the same checks as a run.
void describe_images(std::ostream& out, const std::vector<Sample>& samples, const Dataset* pixel_source,
                     std::vector<std::string>& warnings) {
  std::map<std::pair<int, int>, std::int64_t> sizes;
  std::vector<std::string> bad;
  for (const auto& s : samples) {
    try {
      const RgbImage image = read_rgb(s, pixel_source);
      sizes[{image.width, image.height}] += 1;
    } catch (const ImageError& e) {
      bad.push_back(e.what());
    }
  }
  out << "\nimage sizes (width x height: images):";
  std::size_t shown = 0;
  for (const auto& [wh, n] : sizes) {
    if (shown++ == 8) {
      out << " ... (" << sizes.size() << " sizes)";
      break;
    }
    out << ' ' << wh.first << 'x' << wh.second << ": " << n;
  }
  out << "\nunreadable files: " << bad.size() << "\n";
  for (const auto& b : bad) out << "  " << b << "\n";
  if (!bad.empty())
    warnings.push_back(std::to_string(bad.size()) +
                       " unreadable file(s): a run fails on them unless [dataset] on_bad_image = \"skip\"");
}

}  // namespace

std::string describe_dataset(const std::string& description, const std::vector<std::string>& classes,
                             const std::vector<Sample>& samples, const SplitPlan& plan, bool check_images,
                             const Dataset* pixel_source) {
  std::ostringstream out;
  std::vector<std::string> warnings;
  out << description << "\n" << samples.size() << " images, " << classes.size() << " classes\n\n";
  describe_classes(out, classes, samples, warnings);
  describe_split(out, classes, samples, plan, warnings);
  if (check_images) describe_images(out, samples, pixel_source, warnings);
  out << "\n" << (warnings.empty() ? "no warnings\n" : "warnings:\n");
  for (const auto& w : warnings) out << "  - " << w << "\n";
  return out.str();
}

}  // namespace kgain::core
