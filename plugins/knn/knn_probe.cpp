// Probe `knn`: k nearest neighbours, uniform votes (scikit-learn's KNeighborsClassifier).
//
// The class scores are the shares of the k nearest training images in each class, as
// scikit-learn's predict_proba; the predicted class is the first class with the most votes.
// Features are standardized on the training fold first (option `standardize`). Distances:
// `euclidean` (squared), or `cosine` (1 - cosine similarity), decided in float64: the k nearest
// are the k smallest float64 distances computed directly (sum of squared differences; 1 minus
// the float64 dot product of unit rows); ties in distance go to the training image listed first.
//
// Why two precisions: all distances of a test row through one float32 matrix product (twice
// BLAS's float64 rate) only screen. Each screened distance comes with a bound on its error (the
// float32 product's rounding, at most (d + 2) u (|x| + |y|)^2, u = 2^-24, plus the rounding of
// the rows into float32), so the training images that could be among the k nearest in float64
// are known: those whose lower bound is at most the k-th smallest upper bound. Only they (the k
// nearest and the few within the bound of the k-th, usually) get their float64 distance, and
// the k nearest of them are the k nearest in float64: the screening changes the time, never
// the neighbours.
//
// Options: k (integer, default 5), distance ("euclidean" | "cosine", default "euclidean"),
//          standardize (bool, default true).
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/standardize.hpp>

namespace {

// Bounds on the float64 distances of one test row (its float32 copy's norm `norm`) to every
// training row (norms `y_norm`), from their float32 dot products: screened distance -/+ `slack`
// (|x| + |y|)^2. False when any bound is not finite (a float32 product overflowed). One loop
// without branches or floating-point sums, so that it vectorizes (built for AVX2 and without).
__attribute__((target_clones("avx2", "default"))) bool screen(const float* products, const double* y_norm,
                                                              std::size_t n, double norm, bool cosine, double slack,
                                                              double* lower, double* upper) {
  const double c = cosine ? 1 : 0, e = 1 - c;
  int bad = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double dot = products[j], sum = norm + y_norm[j], bound = slack * sum * sum;
    const double screened = c * (1 - dot) + e * (norm * norm + y_norm[j] * y_norm[j] - 2 * dot);
    lower[j] = screened - bound;
    upper[j] = screened + bound;
    bad |= !(upper[j] - upper[j] == 0);  // inf - inf and NaN are not 0
  }
  return bad == 0;
}

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
    train32_ = train_.to(torch::kFloat);
    train_norms_ = row_norms(train32_);
    labels_ = labels.to(torch::kLong).contiguous();
    num_classes_ = num_classes;
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(train_.defined(), "knn: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    const at::Tensor x = prepare(features), x32 = x.to(torch::kFloat), x_norms = row_norms(x32);
    const std::int64_t k = std::min<std::int64_t>(k_, train_.size(0));
    at::Tensor proba = torch::zeros({x.size(0), num_classes_}, torch::kFloat64);
    Scratch scratch;
    // In blocks of rows, so that the screening products stay small (256 x n float32).
    for (std::int64_t start = 0; start < x.size(0); start += 256) {
      const std::int64_t end = std::min(x.size(0), start + 256);
      const at::Tensor products = x32.slice(0, start, end).mm(train32_.t()).contiguous();
      for (std::int64_t i = start; i < end; ++i) {
        const auto& nearest = k_nearest(x.data_ptr<double>() + i * x.size(1), x_norms.data_ptr<double>()[i],
                                        products.data_ptr<float>() + (i - start) * products.size(1), k, scratch);
        double* votes = proba.data_ptr<double>() + i * num_classes_;
        for (const auto& [distance, index] : nearest) votes[labels_.data_ptr<std::int64_t>()[index]] += 1;
      }
    }
    return proba / static_cast<double>(k);
  }

 private:
  using Neighbour = std::pair<double, std::int64_t>;  // (float64 distance, training index)
  struct Scratch {
    std::vector<double> lower, upper, kth;  // bounds on each float64 distance
    std::vector<std::size_t> pending;       // images that may be among the k nearest
    std::vector<Neighbour> candidates;
  };

  // The k nearest training images of one test row, in float64 (see the header comment). `x` is
  // the float64 test row, `norm` its float32 copy's norm, `products` its float32 dot products
  // with every training row.
  const std::vector<Neighbour>& k_nearest(const double* x, double norm, const float* products, std::int64_t k,
                                          Scratch& s) const {
    const std::int64_t n = train_.size(0), d = train_.size(1);
    // Rounding of the float32 product (at most (d + 1) u |x| |y| for any order of summation) and
    // of the rows into float32 (2 u (|x| + |y|)^2 at most, on a squared distance), with room.
    const double u = std::ldexp(1.0, -24), slack = 1.01 * static_cast<double>(d + 3) * u;
    const auto N = static_cast<std::size_t>(n), K = static_cast<std::size_t>(k);
    s.lower.resize(N), s.upper.resize(N);
    const bool finite = screen(products, train_norms_.data_ptr<double>(), N, norm, distance_ == "cosine", slack,
                               s.lower.data(), s.upper.data());
    // The k-th smallest upper bound: no float64 distance beyond it can be among the k nearest.
    // (A float32 product that overflowed screens nothing: every image gets its float64 distance.)
    s.pending.clear();
    const double limit = finite ? kth_smallest_upper_bound(s, K) : std::numeric_limits<double>::infinity();
    if (!finite || K > kScanUpTo) {
      s.pending.resize(N);
      for (std::size_t j = 0; j < N; ++j) s.pending[j] = j;
    }
    s.candidates.clear();
    for (std::size_t j : s.pending)
      if (!finite || s.lower[j] <= limit)
        s.candidates.emplace_back(exact_distance(x, static_cast<std::int64_t>(j)), static_cast<std::int64_t>(j));
    std::partial_sort(s.candidates.begin(), s.candidates.begin() + k, s.candidates.end());
    s.candidates.resize(static_cast<std::size_t>(k));
    return s.candidates;
  }

  // Up to this k one scan keeps the k smallest upper bounds so far in order (almost every image
  // costs one comparison) and notes, on the way, every image whose lower bound is within the
  // k-th smallest so far (a superset of the final candidates: that bound only falls); beyond,
  // selection (linear whatever k is) and a second pass.
  static constexpr std::size_t kScanUpTo = 32;

  // The k-th smallest upper bound; up to kScanUpTo, also s.pending (see above).
  static double kth_smallest_upper_bound(Scratch& s, std::size_t k) {
    const std::size_t n = s.upper.size();
    if (k > kScanUpTo) {
      s.kth = s.upper;
      std::nth_element(s.kth.begin(), s.kth.begin() + static_cast<std::ptrdiff_t>(k - 1), s.kth.end());
      return s.kth[k - 1];
    }
    s.kth.assign(k, std::numeric_limits<double>::infinity());
    for (std::size_t j = 0; j < n; ++j) {
      if (s.lower[j] <= s.kth[k - 1]) s.pending.push_back(j);
      const double upper = s.upper[j];
      if (!(upper < s.kth[k - 1])) continue;
      std::size_t at = k - 1;
      for (; at > 0 && s.kth[at - 1] > upper; --at) s.kth[at] = s.kth[at - 1];
      s.kth[at] = upper;
    }
    return s.kth[k - 1];
  }

  double exact_distance(const double* x, std::int64_t j) const {
    const std::int64_t d = train_.size(1);
    const double* y = train_.data_ptr<double>() + j * d;
    double sum = 0;
    if (distance_ == "cosine") {
      for (std::int64_t l = 0; l < d; ++l) sum += x[l] * y[l];
      return 1 - sum;
    }
    for (std::int64_t l = 0; l < d; ++l) sum += (x[l] - y[l]) * (x[l] - y[l]);
    return sum;
  }

  // Each row's norm, in float64, of float32 rows [n, d].
  static at::Tensor row_norms(const at::Tensor& rows32) {
    return rows32.to(torch::kFloat64).pow(2).sum(1).sqrt().contiguous();
  }

  at::Tensor prepare(const at::Tensor& features) const {
    at::Tensor x = standardize_ ? scaler_.apply(features) : features.to(torch::kFloat64);
    if (distance_ == "cosine") x = x / x.norm(2, 1, true).clamp_min(1e-12);
    return x.contiguous();
  }

  std::int64_t k_;
  std::string distance_;
  bool standardize_;
  kgain::Standardizer scaler_;
  at::Tensor train_, train32_, train_norms_, labels_;  // [n, d] float64 and float32, [n], [n]
  std::int64_t num_classes_ = 0;
};

}  // namespace

KGAIN_LIBRARY("knn",
              kgain::make_plugin<KnnProbe>("knn", "1.1.0", "k nearest neighbours, euclidean or cosine, uniform votes"))
