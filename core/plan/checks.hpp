// What every study needs of its images, classes and folds. Each violation would otherwise turn
// into a wrong score rather than an error: a class without images, an image listed twice, a
// fold without training images of two classes, one image on both sides of a fold.
// Threads: pure functions of their arguments (check_folds logs warnings).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <kgain/dataset.hpp>

#include "plan/splits.hpp"

namespace kgain::core {

// At least two uniquely named classes, each with an image; every image with a path, a label in
// range and listed once. `dataset` names the set in the messages.
void check_samples(const std::vector<Sample>& samples, const std::vector<std::string>& classes,
                   const std::string& dataset);

// Every fold has images on both sides, two classes to train on and a test image of a class it
// trains on; a class missing from a fold's training images is a warning.
void check_folds(const SplitPlan& plan, const std::vector<std::int64_t>& labels,
                 const std::vector<std::string>& classes);

// No fold puts a group on both sides (a dataset's own split can).
void check_groups(const std::vector<Sample>& samples, const SplitPlan& plan);

// Two images with the same content (`identities`, image_identity.hpp) are one image: a fold that
// trains on one and tests on the other is refused; a pair on one side is a warning. Images in
// no fold (left out) never count.
void check_duplicate_content(const std::vector<Sample>& samples, const std::vector<std::uint64_t>& identities,
                             const SplitPlan& plan);

}  // namespace kgain::core
