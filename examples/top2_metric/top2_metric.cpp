// Example: a metric plugin, built out of tree against the installed kgain SDK.
//
// Top-k accuracy counts an image as right when its true class is among the k highest scores.
// With many classes (tissue types, tumour subtypes) it says whether a probe is nearly right
// when it is wrong. This file is the whole plugin: a class implementing kgain::Metric, read
// from its options in the constructor, and one KGAIN_LIBRARY line that exports it.
//
// Use it in a config:
//   [run]
//   plugin_paths = ["path/to/build-examples/plugins"]
//   [metrics]
//   names = ["accuracy", "top_k_accuracy"]
//   [metrics.top_k_accuracy]
//   k = 2
#include <kgain/metric.hpp>
#include <kgain/plugin.hpp>

namespace {

class TopKAccuracy : public kgain::Metric {
 public:
  // The options, declared once: the core checks written values against this before the
  // constructor runs (a bad value stops the run before any work, with the config file's line and
  // column in the message), `kgain list --options top_k_accuracy` prints it, and get_int("k")
  // returns its default.
  static constexpr std::array declared_options{
      kgain::option::integer("k", "2", "an image counts as right when its class is among the k top scores").at_least(1),
  };

  explicit TopKAccuracy(const kgain::Options& options) : k_(options.get_int("k")) {}

  double score(const kgain::Predictions& p) const override {
    if (p.size() == 0) return 0.0;
    std::int64_t hits = 0;
    for (std::int64_t i = 0; i < p.size(); ++i) {
      // The true class is in the top k when fewer than k classes score strictly higher.
      const double truth = p.scores[i * p.num_classes + p.labels[i]];
      std::int64_t higher = 0;
      for (std::int64_t c = 0; c < p.num_classes; ++c) higher += p.scores[i * p.num_classes + c] > truth;
      hits += higher < k_;
    }
    return static_cast<double>(hits) / static_cast<double>(p.size());
  }

 private:
  std::int64_t k_;
};

}  // namespace

KGAIN_LIBRARY("example_top2_metric",
              kgain::make_plugin<TopKAccuracy>("top_k_accuracy", "1.0.0",
                                               "true class among the k highest scores (example plugin)"))
