// Probe `knn`: k nearest neighbours, uniform votes (scikit-learn's KNeighborsClassifier).
//
// The class scores are the shares of the k nearest training images in each class, as
// scikit-learn's predict_proba; the predicted class is the first class with the most votes.
// Features are standardized on the training fold first (option `standardize`). Distances:
// `euclidean`, or `cosine` (1 - cosine similarity), in float64. Ties in distance go to the
// training image listed first. The k nearest are found by selection (std::nth_element on
// (distance, index) pairs: linear in the training images), not by sorting each row.
//
// Options: k (integer, default 5), distance ("euclidean" | "cosine", default "euclidean"),
//          standardize (bool, default true).
#include <algorithm>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/standardize.hpp>

namespace {

class KnnProbe : public kgain::Probe {
 public:
  explicit KnnProbe(const kgain::Options& options)
      : k_(options.get_int("k", 5)),
        distance_(options.get_string("distance", "euclidean")),
        standardize_(options.get_bool("standardize", true)) {
    if (k_ <= 0) throw options.error("k", "must be positive (received " + std::to_string(k_) + ")");
    if (distance_ != "euclidean" && distance_ != "cosine")
      throw options.error("distance", "must be \"euclidean\" or \"cosine\" (received \"" + distance_ + "\")");
  }

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    if (standardize_) scaler_.fit(features);
    train_ = prepare(features);
    if (distance_ == "euclidean") train_squared_norms_ = train_.pow(2).sum(1).unsqueeze(0);
    labels_ = labels.to(torch::kLong).contiguous();
    num_classes_ = num_classes;
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(train_.defined(), "knn: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    const at::Tensor x = prepare(features);
    const std::int64_t k = std::min<std::int64_t>(k_, train_.size(0));
    at::Tensor proba = torch::zeros({x.size(0), num_classes_}, torch::kFloat64);
    // In blocks of rows, so that the distance matrix stays small (256 x n float64).
    for (std::int64_t start = 0; start < x.size(0); start += 256) {
      const at::Tensor block = x.slice(0, start, std::min(x.size(0), start + 256));
      const at::Tensor d =
          distance_ == "cosine"
              ? 1 - block.mm(train_.t())
              : at::addmm(train_squared_norms_, block, train_.t(), 1, -2).add_(block.pow(2).sum(1, true));
      vote(d, k, proba.slice(0, start, start + block.size(0)));
    }
    return proba / static_cast<double>(k);
  }

 private:
  // Each row of distances d [b, n] gives its k nearest training images' votes (counts) to `out` [b,
  // classes]: the k smallest (distance, training index) pairs, so that among equal distances the
  // training image listed first is nearer. One scan per row keeps the k best so far in order: a
  // later image enters only when strictly nearer than the k-th (an equal distance has a larger
  // index), so almost every image costs one comparison (std::nth_element moves every pair, and
  // is kept for large k, where the scan's insertions would grow with k).
  // Up to this k the scan's insertions (k moves at most) stay cheaper than selection.
  static constexpr std::int64_t kScanUpTo = 32;

  void vote(const at::Tensor& distances, std::int64_t k, at::Tensor out) const {
    const at::Tensor d = distances.contiguous();
    const std::int64_t n = d.size(1);
    const double* row = d.data_ptr<double>();
    double* votes = out.data_ptr<double>();
    const std::int64_t* labels = labels_.data_ptr<std::int64_t>();
    const auto kk = static_cast<std::size_t>(k);
    std::vector<std::pair<double, std::int64_t>> best(kk), all;
    for (std::int64_t i = 0; i < d.size(0); ++i, row += n) {
      if (k <= kScanUpTo) {
        for (std::size_t j = 0; j < kk; ++j) best[j] = {row[j], static_cast<std::int64_t>(j)};
        std::sort(best.begin(), best.end());
        for (std::int64_t j = k; j < n; ++j) {
          if (!(row[j] < best[kk - 1].first)) continue;
          std::size_t at = kk - 1;
          for (; at > 0 && best[at - 1].first > row[j]; --at) best[at] = best[at - 1];
          best[at] = {row[j], j};
        }
      } else {  // a large k: selection over every pair, linear in n whatever k is
        all.resize(static_cast<std::size_t>(n));
        for (std::int64_t j = 0; j < n; ++j) all[static_cast<std::size_t>(j)] = {row[j], j};
        std::nth_element(all.begin(), all.begin() + (k - 1), all.end());
        std::copy(all.begin(), all.begin() + k, best.begin());
      }
      for (const auto& [distance, index] : best) votes[i * num_classes_ + labels[index]] += 1;
    }
  }

  at::Tensor prepare(const at::Tensor& features) const {
    at::Tensor x = standardize_ ? scaler_.apply(features) : features.to(torch::kFloat64);
    if (distance_ == "cosine") x = x / x.norm(2, 1, true).clamp_min(1e-12);
    return x;
  }

  std::int64_t k_;
  std::string distance_;
  bool standardize_;
  kgain::Standardizer scaler_;
  at::Tensor train_, train_squared_norms_, labels_;  // [n, d], [1, n], [n]
  std::int64_t num_classes_ = 0;
};

}  // namespace

KGAIN_LIBRARY("knn",
              kgain::make_plugin<KnnProbe>("knn", "1.0.0", "k nearest neighbours, euclidean or cosine, uniform votes"))
