// Probe `knn`: k nearest neighbours, uniform votes (scikit-learn's KNeighborsClassifier).
//
// The class scores are the shares of the k nearest training images in each class, as
// scikit-learn's predict_proba; the predicted class is the first class with the most votes.
// Features are standardized on the training fold first (option `standardize`). Distances:
// `euclidean`, or `cosine` (1 - cosine similarity). Ties in distance go to the training image
// listed first.
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
    labels_ = labels.to(torch::kLong);
    num_classes_ = num_classes;
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(train_.defined(), "knn: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    const at::Tensor x = prepare(features);
    const std::int64_t k = std::min<std::int64_t>(k_, train_.size(0));
    at::Tensor proba = torch::zeros({x.size(0), num_classes_}, torch::kFloat64);
    // In blocks, so that the distance matrix stays small.
    for (std::int64_t start = 0; start < x.size(0); start += 1024) {
      const at::Tensor block = x.slice(0, start, std::min(x.size(0), start + 1024));
      at::Tensor d = distance_ == "cosine" ? 1 - block.mm(train_.t())
                                           : (block.pow(2).sum(1, true) - 2 * block.mm(train_.t()) + train_.pow(2).sum(1).unsqueeze(0));
      // A stable sort keeps the first-listed training image first among equal distances.
      const at::Tensor nearest = std::get<1>(d.sort(/*stable=*/true, /*dim=*/1, /*descending=*/false)).slice(1, 0, k);
      const at::Tensor votes = labels_.index({nearest});  // [b, k]
      proba.slice(0, start, start + block.size(0)).scatter_add_(1, votes, torch::ones_like(votes, torch::kFloat64));
    }
    return proba / static_cast<double>(k);
  }

 private:
  at::Tensor prepare(const at::Tensor& features) const {
    at::Tensor x = standardize_ ? scaler_.apply(features) : features.to(torch::kFloat64);
    if (distance_ == "cosine") x = x / x.norm(2, 1, true).clamp_min(1e-12);
    return x;
  }

  std::int64_t k_;
  std::string distance_;
  bool standardize_;
  kgain::Standardizer scaler_;
  at::Tensor train_, labels_;
  std::int64_t num_classes_ = 0;
};

}  // namespace

KGAIN_LIBRARY("knn", kgain::make_plugin<KnnProbe>("knn", "1.0.0", "k nearest neighbours, euclidean or cosine, uniform votes"))
