// The plan of a study: everything the config describes, made and checked before any image is
// decoded for features. Its plugins (each created, so its options are checked), the images and
// their folds, the preprocessing, the taps and their cost, the variants (pretrained, and one
// random per seed), each image's content identity, and the batch-norm calibration.
//
// A plan is not edited once made: the images that extraction could not decode come back as a
// new plan without them (without_images), which is the one the evaluation uses.
// Threads: plan_study runs on every rank of an MPI job (each makes the same plan).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <kgain/backbone.hpp>
#include <kgain/dataset.hpp>

#include "analyse/transferability.hpp"
#include "config/config.hpp"
#include "evaluate/evaluation.hpp"
#include "extract/extraction.hpp"
#include "images/image.hpp"
#include "plan/registry.hpp"
#include "plan/splits.hpp"

namespace kgain::core {

struct StudyPlan {
  std::shared_ptr<const Registry> registry;  // holds the plugin libraries for as long as the plan
  std::shared_ptr<Dataset> dataset;
  std::shared_ptr<Backbone> backbone;
  std::vector<NamedMetric> metrics;
  std::vector<NamedEstimator> estimators;  // the transferability estimators (FeatureMetric plugins)
  std::vector<ProbeSpec> probes;
  std::vector<std::string> classes;
  std::vector<Sample> samples;       // only images some fold uses
  std::vector<std::int64_t> labels;  // samples[i].label
  SplitPlan splits;
  Preprocessing prep;
  std::vector<TapInfo> taps;
  std::vector<std::string> tap_names;
  std::vector<Variant> variants;
  std::vector<std::uint64_t> identities;   // image_identity.hpp
  std::uint64_t calibration_identity = 0;  // of the batch-norm calibration images, when used
};

// Loads the plugins, lists and checks the images, makes the folds, inspects the taps, hashes the
// images and, when asked, calibrates batch norm. Throws with the file and the fix on anything a
// study could not score.
StudyPlan plan_study(const Config& config);

// The plan without the images extraction could not decode (they leave every fold and show as
// "unused" in splits.csv), its folds checked again, and its images checked for duplicate content
// (after extraction: undecodable files that happen to be equal are not images).
StudyPlan without_images(const StudyPlan& plan, const std::vector<BadImage>& bad_images);

// The image decoding workers: [run] decode_threads, else a quarter of the cores (at least 1).
int decode_threads(const Config& config);

}  // namespace kgain::core
