// Probe `knn`: k nearest neighbours, uniform votes (scikit-learn's KNeighborsClassifier).
//
// The class scores are the shares of the k nearest training images in each class, as
// scikit-learn's predict_proba; the predicted class is the first class with the most votes.
// Features are standardized on the training fold first (option `standardize`). Distances:
// `euclidean`, or `cosine` (1 - cosine similarity), in float64. Ties in distance go to the
// training image listed first. The k nearest are found by selection of the k-th smallest
// distance (linear in the training images), not by sorting each row.
//
// Options: k (integer, default 5), distance ("euclidean" | "cosine", default "euclidean"),
//          standardize (bool, default true).
#include <torch/torch.h>

#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/standardize.hpp>

namespace {

class KnnProbe : public kgain::Probe {
 public:
  explicit KnnProbe(const kgain::Options& options)
      : k_(options.get_int("k", 5)), distance_(options.get_string("distance", "euclidean")), standardize_(options.get_bool("standardize", true)) {
    if (k_ <= 0) throw options.error("k", "must be positive (received " + std::to_string(k_) + ")");
    if (distance_ != "euclidean" && distance_ != "cosine")
      throw options.error("distance", "must be \"euclidean\" or \"cosine\" (received \"" + distance_ + "\")");
  }

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    if (standardize_) scaler_.fit(features);
    train_ = prepare(features);
    train_squared_norms_ = train_.pow(2).sum(1).unsqueeze(0);
    train_one_hot_ = torch::one_hot(labels.to(torch::kLong), num_classes).to(torch::kFloat64);
    num_classes_ = num_classes;
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(train_.defined(), "knn: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    const at::Tensor x = prepare(features);
    const std::int64_t k = std::min<std::int64_t>(k_, train_.size(0));
    at::Tensor proba = torch::empty({x.size(0), num_classes_}, torch::kFloat64);
    // In blocks of rows, so that the distance matrix stays small (256 x n float64).
    for (std::int64_t start = 0; start < x.size(0); start += 256) {
      const at::Tensor block = x.slice(0, start, std::min(x.size(0), start + 256));
      const at::Tensor d = distance_ == "cosine" ? 1 - block.mm(train_.t())
                                                 : at::addmm(train_squared_norms_, block, train_.t(), 1, -2).add_(block.pow(2).sum(1, true));
      proba.slice(0, start, start + block.size(0)).copy_(nearest(d, k).to(torch::kFloat64).mm(train_one_hot_));
    }
    return proba / static_cast<double>(k);
  }

 private:
  // Which training images are the k nearest of each row of distances d [b, n] (bool [b, n]):
  // the k-th smallest distance by selection (no sort), everything closer, and of the images at
  // exactly that distance the ones listed first, as many as are still needed.
  static at::Tensor nearest(const at::Tensor& d, std::int64_t k) {
    const at::Tensor kth = std::get<0>(d.kthvalue(k, 1, /*keepdim=*/true));
    at::Tensor chosen = d < kth;
    const at::Tensor tied = d == kth;
    const at::Tensor needed = k - chosen.sum(1, true);
    const at::Tensor rows_with_extra_ties = tied.sum(1, true).gt(needed).squeeze(1).nonzero().squeeze(1);
    chosen.logical_or_(tied);
    if (rows_with_extra_ties.numel() > 0) {  // rare: keep the first-listed of the tied images only
      const at::Tensor rows = tied.index_select(0, rows_with_extra_ties);
      const at::Tensor keep = rows.logical_and(rows.cumsum(1).le(needed.index_select(0, rows_with_extra_ties)));
      chosen.index_copy_(0, rows_with_extra_ties, chosen.index_select(0, rows_with_extra_ties).logical_xor(rows.logical_xor(keep)));
    }
    return chosen;
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
  at::Tensor train_, train_squared_norms_, train_one_hot_;  // [n, d], [1, n], [n, classes]
  std::int64_t num_classes_ = 0;
};

}  // namespace

KGAIN_LIBRARY("knn", kgain::make_plugin<KnnProbe>("knn", "1.0.0", "k nearest neighbours, euclidean or cosine, uniform votes"))
