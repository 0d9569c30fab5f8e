// GroupPattern: the group (patient, slide) of an image from its path, by a regular expression.
//
// Dataset plugins offer it as the `group_pattern` option for sets that encode the patient in
// file names: the first capture group, or the whole match when there is none, is the group.
// Threads: built once; group_of() is const and std::regex searches are safe in parallel.
#pragma once

#include <optional>
#include <regex>
#include <string>

#include "kgain/options.hpp"

namespace kgain {

class GroupPattern {
 public:
  // Reads `key` from the options; an invalid expression is an OptionError naming its place.
  explicit GroupPattern(const Options& options, const std::string& key = "group_pattern")
      : text_(options.get_string(key, "")) {
    if (text_.empty()) return;
    try {
      regex_ = std::regex(text_);
    } catch (const std::regex_error& e) {
      throw options.error(key, std::string("is not a valid regular expression (") + e.what() + ")");
    }
  }
  bool enabled() const { return !text_.empty(); }
  const std::string& text() const { return text_; }
  // The group found in `path`, or nothing when the expression does not match or its group is
  // empty (an optional capture that took nothing: that image would silently be a group of its
  // own, free to straddle a split).
  std::optional<std::string> group_of(const std::string& path) const {
    std::smatch m;
    if (!std::regex_search(path, m, regex_)) return std::nullopt;
    std::string group = m.size() > 1 ? m[1].str() : m[0].str();
    if (group.empty()) return std::nullopt;
    return group;
  }

 private:
  std::string text_;
  std::regex regex_;
};

}  // namespace kgain
