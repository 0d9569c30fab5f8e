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
// Options: `declared_options` below (`kgain list --options knn`).
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <torch/torch.h>

#include <kgain/numeric/dense_kernels.hpp>
#include <kgain/plugin.hpp>
#include <kgain/probe.hpp>
#include <kgain/numeric/standardize.hpp>

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

// The first j in [from, n) with lower[j] <= t, or n. Blocks of eight are tested at once (four
// SSE2 comparisons, one branch): past the first few hundred images nearly every block is passed
// over whole, since few lower bounds are within the k-th smallest upper bound so far. (Written
// with intrinsics: compilers do not vectorize a loop that stops at the first match.)
std::size_t first_at_most(const double* lower, std::size_t from, std::size_t n, double t) {
  std::size_t j = from;
#if defined(__SSE2__)
  const __m128d limit = _mm_set1_pd(t);
  for (; j + 8 <= n; j += 8) {
    const __m128d a =
        _mm_or_pd(_mm_cmple_pd(_mm_loadu_pd(lower + j), limit), _mm_cmple_pd(_mm_loadu_pd(lower + j + 2), limit));
    const __m128d b =
        _mm_or_pd(_mm_cmple_pd(_mm_loadu_pd(lower + j + 4), limit), _mm_cmple_pd(_mm_loadu_pd(lower + j + 6), limit));
    if (_mm_movemask_pd(_mm_or_pd(a, b)) != 0) break;
  }
#endif
  for (; j < n; ++j)
    if (lower[j] <= t) return j;
  return n;
}

// sum_l (x_l - y_l)^2 in float64: eight running sums (one chain of dependent additions would
// take four cycles an element), added in a fixed order, as kgain::dot_rows does for x.y.
__attribute__((target_clones("avx2", "default"))) double squared_distance(const double* x, const double* y,
                                                                          std::size_t d) {
  double lanes[8] = {0};
  std::size_t l = 0;
  for (; l + 8 <= d; l += 8)
    for (std::size_t q = 0; q < 8; ++q) lanes[q] += (x[l + q] - y[l + q]) * (x[l + q] - y[l + q]);
  double tail = 0;
  for (; l < d; ++l) tail += (x[l] - y[l]) * (x[l] - y[l]);
  return (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))) + tail;
}

// A row's float32 copy (`out`) and that copy's norm in float64.
__attribute__((target_clones("avx2", "default"))) double to_float32(const double* x, std::size_t d, float* out) {
  double lanes[8] = {0};
  std::size_t l = 0;
  for (; l + 8 <= d; l += 8)
    for (std::size_t q = 0; q < 8; ++q) {
      out[l + q] = static_cast<float>(x[l + q]);
      lanes[q] += static_cast<double>(out[l + q]) * static_cast<double>(out[l + q]);
    }
  double tail = 0;
  for (; l < d; ++l) {
    out[l] = static_cast<float>(x[l]);
    tail += static_cast<double>(out[l]) * static_cast<double>(out[l]);
  }
  return std::sqrt((((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))) +
                   tail);
}

class KnnProbe : public kgain::Probe {
 public:
  static constexpr std::array declared_options{
      kgain::option::integer("k", "5", "neighbours; more than a fold's training images is an error").positive(),
      kgain::option::string("distance", "\"euclidean\"", "how near a neighbour is").one_of("euclidean|cosine"),
      kgain::option::boolean("standardize", "true", "z-score features with the training fold's statistics first"),
  };

  explicit KnnProbe(const kgain::Options& options)
      : k_(options.get_int("k")),
        distance_(options.get_string("distance")),
        standardize_(options.get_bool("standardize")) {}

  void fit(const at::Tensor& features, const at::Tensor& labels, std::int64_t num_classes, std::uint64_t) override {
    // scikit-learn refuses k above the training size; clamping it would let every test image
    // vote with all training images, scoring the majority class at every tap (gain 0).
    if (k_ > features.size(0))
      throw std::invalid_argument("knn: k = " + std::to_string(k_) + " is more than the " +
                                  std::to_string(features.size(0)) +
                                  " training images of this fold; lower [probe] k or use more images");
    if (standardize_) scaler_.fit(features);
    train_ = prepare(features);
    labels_ = labels.to(torch::kLong).contiguous();
    num_classes_ = num_classes;
  }

  at::Tensor predict_proba(const at::Tensor& features) const override {
    TORCH_CHECK(train_.x.defined(), "knn: predict_proba() before fit()");
    torch::NoGradGuard no_grad;
    const Rows x = prepare(features);
    const std::int64_t k = k_;  // at most the training size (fit)
    const std::int64_t m = x.x.size(0), d = x.x.size(1);
    at::Tensor proba = torch::zeros({m, num_classes_}, torch::kFloat64);
    Scratch scratch;
    // In blocks of rows, so that the screening products stay small (16 MB of float32 at most),
    // but no smaller than that: each product packs all training rows for BLAS again.
    const std::int64_t block =
        std::max<std::int64_t>(64, (std::int64_t{4} << 20) / std::max<std::int64_t>(1, train_.x.size(0)));
    for (std::int64_t start = 0; start < m; start += block) {
      const std::int64_t end = std::min(m, start + block);
      const at::Tensor products = x.x32.slice(0, start, end).mm(train_.x32.t()).contiguous();
      for (std::int64_t i = start; i < end; ++i) {
        const auto& nearest = k_nearest(x.x.data_ptr<double>() + i * d, x.norms.data_ptr<double>()[i],
                                        products.data_ptr<float>() + (i - start) * products.size(1), k, scratch);
        double* votes = proba.data_ptr<double>() + i * num_classes_;
        for (const auto& [distance, index] : nearest) votes[labels_.data_ptr<std::int64_t>()[index]] += 1;
      }
    }
    return proba / static_cast<double>(k);
  }

 private:
  using Neighbour = std::pair<double, std::int64_t>;  // (float64 distance, training index)
  struct Rows {
    at::Tensor x, x32, norms;  // float64 [n, d] as the distances use them, its float32 copy, the copy's norms [n]
  };
  struct Scratch {
    std::vector<double> lower, upper, kth;  // bounds on each float64 distance; scratch for k > kScanUpTo
    std::vector<std::size_t> pending;       // images that may be among the k nearest
    std::vector<Neighbour> candidates;
  };

  // The k nearest training images of one test row, in float64 (see the header comment). `x` is
  // the float64 test row, `norm` its float32 copy's norm, `products` its float32 dot products
  // with every training row.
  const std::vector<Neighbour>& k_nearest(const double* x, double norm, const float* products, std::int64_t k,
                                          Scratch& s) const {
    const std::int64_t n = train_.x.size(0), d = train_.x.size(1);
    // Rounding of the float32 product (at most (d + 1) u |x| |y| for any order of summation) and
    // of the rows into float32 (2 u (|x| + |y|)^2 at most, on a squared distance), with room.
    const double u = std::ldexp(1.0, -24), slack = 1.01 * static_cast<double>(d + 3) * u;
    const auto N = static_cast<std::size_t>(n), K = static_cast<std::size_t>(k);
    s.lower.resize(N), s.upper.resize(N);
    const bool finite = screen(products, train_.norms.data_ptr<double>(), N, norm, distance_ == "cosine", slack,
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
    double kth[kScanUpTo];  // the k smallest upper bounds so far, in order
    std::fill(kth, kth + k, std::numeric_limits<double>::infinity());
    const double* lower = s.lower.data();
    // An image whose lower bound is above the k-th smallest upper bound so far has its upper
    // bound above it too (lower <= upper): it is passed over whole.
    for (std::size_t j = first_at_most(lower, 0, n, kth[k - 1]); j < n;
         j = first_at_most(lower, j + 1, n, kth[k - 1])) {
      s.pending.push_back(j);
      const double upper = s.upper[j];
      if (!(upper < kth[k - 1])) continue;
      std::size_t at = k - 1;
      for (; at > 0 && kth[at - 1] > upper; --at) kth[at] = kth[at - 1];
      kth[at] = upper;
    }
    return kth[k - 1];
  }

  double exact_distance(const double* x, std::int64_t j) const {
    const auto d = static_cast<std::size_t>(train_.x.size(1));
    const double* y = train_.x.data_ptr<double>() + static_cast<std::size_t>(j) * d;
    return distance_ == "cosine" ? 1 - kgain::dot_rows(x, y, d) : squared_distance(x, y, d);
  }

  // The rows as distances use them (standardized, then of unit length for cosine), in float64,
  // with their float32 copies and those copies' norms made in the same pass over each row.
  Rows prepare(const at::Tensor& features) const {
    at::Tensor x = standardize_ ? scaler_.apply(features) : features.to(torch::kFloat64);
    if (distance_ == "cosine") x = x / x.norm(2, 1, true).clamp_min(1e-12);
    Rows rows{x.contiguous(), torch::empty(x.sizes(), torch::kFloat), torch::empty({x.size(0)}, torch::kFloat64)};
    const auto n = static_cast<std::size_t>(x.size(0)), d = static_cast<std::size_t>(x.size(1));
    for (std::size_t i = 0; i < n; ++i)
      rows.norms.data_ptr<double>()[i] =
          to_float32(rows.x.data_ptr<double>() + i * d, d, rows.x32.data_ptr<float>() + i * d);
    return rows;
  }

  std::int64_t k_;
  std::string distance_;
  bool standardize_;
  kgain::Standardizer scaler_;
  Rows train_;
  at::Tensor labels_;  // [n]
  std::int64_t num_classes_ = 0;
};

}  // namespace

KGAIN_LIBRARY("knn",
              kgain::make_plugin<KnnProbe>("knn", "1.1.0", "k nearest neighbours, euclidean or cosine, uniform votes"))
