#include "analyse/transferability.hpp"

#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "runtime/blas_threads.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

namespace kgain::core {

double linear_cka(const at::Tensor& x, const at::Tensor& y) {
  const at::Tensor xc = x.to(at::kDouble) - x.to(at::kDouble).mean(0, true);
  const at::Tensor yc = y.to(at::kDouble) - y.to(at::kDouble).mean(0, true);
  const double cross = yc.t().mm(xc).pow(2).sum().item<double>();
  const double xx = xc.t().mm(xc).norm().item<double>(), yy = yc.t().mm(yc).norm().item<double>();
  if (xx == 0 || yy == 0) return std::numeric_limits<double>::quiet_NaN();
  return cross / (xx * yy);
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const auto ranks = [](const std::vector<double>& v) {
    std::vector<std::size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](std::size_t i, std::size_t j) { return v[i] < v[j]; });
    std::vector<double> r(v.size());
    for (std::size_t i = 0; i < idx.size();) {
      std::size_t j = i;
      while (j < idx.size() && v[idx[j]] == v[idx[i]]) ++j;
      for (std::size_t k = i; k < j; ++k) r[idx[k]] = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2.0;
      i = j;
    }
    return r;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (a.size() != b.size() || a.size() < 3) return nan;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::isnan(a[i]) || std::isnan(b[i])) return nan;
  const auto ra = ranks(a), rb = ranks(b);
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / ra.size(),
               mb = std::accumulate(rb.begin(), rb.end(), 0.0) / rb.size();
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : nan;
}

double leep(const at::Tensor& source_probs, const std::vector<std::int64_t>& labels, std::int64_t num_classes) {
  const at::Tensor theta = source_probs.to(at::kDouble);
  const at::Tensor y = at::one_hot(at::tensor(labels, at::kLong), num_classes).to(at::kDouble);  // [n, K]
  const double n = static_cast<double>(theta.size(0));
  const at::Tensor joint = y.t().mm(theta) / n;                                           // P(y, z): [K, Z]
  const at::Tensor p_z = joint.sum(0, true);                                              // [1, Z]
  const at::Tensor conditional = at::where(p_z > 0, joint / p_z, at::zeros_like(joint));  // P(y | z)
  const at::Tensor eep = theta.mm(conditional.t());  // [n, K]: sum_z P(y | z) theta_iz
  return (eep * y).sum(1).log().mean().item<double>();
}

double nce(const at::Tensor& source_probs, const std::vector<std::int64_t>& labels, std::int64_t num_classes) {
  const at::Tensor z = source_probs.argmax(1);
  const std::int64_t source_classes = source_probs.size(1);
  std::vector<double> joint(static_cast<std::size_t>(num_classes * source_classes), 0.0),
      p_z(static_cast<std::size_t>(source_classes), 0.0);
  const double n = static_cast<double>(labels.size());
  const auto* zs = z.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    joint[static_cast<std::size_t>(labels[i] * source_classes + zs[i])] += 1.0 / n;
    p_z[static_cast<std::size_t>(zs[i])] += 1.0 / n;
  }
  double out = 0;
  for (std::int64_t y = 0; y < num_classes; ++y)
    for (std::int64_t s = 0; s < source_classes; ++s) {
      const double p = joint[static_cast<std::size_t>(y * source_classes + s)];
      if (p > 0) out += p * std::log(p / p_z[static_cast<std::size_t>(s)]);
    }
  return out;
}

namespace {

// Runs task(0) .. task(count - 1) side by side on `threads` workers, each with one LibTorch and
// one BLAS thread, so that the numbers do not depend on `threads` (blas_threads.hpp); the first
// exception stops the others and is rethrown here.
void side_by_side(std::size_t count, int threads, const std::function<void(std::size_t)>& task) {
  const SingleThreadedBlas one_blas_thread;
  std::atomic<std::size_t> next{0};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  const auto work = [&] {
    at::set_num_threads(1);
    try {
      for (std::size_t i = next++; i < count; i = next++) task(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      next = count;
    }
  };
  const int previous = at::get_num_threads();
  std::vector<std::thread> pool;
  for (int i = 1; i < std::min<int>(threads, static_cast<int>(count)); ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  at::set_num_threads(previous);
  if (first_error) std::rethrow_exception(first_error);
}

double mean(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

}  // namespace

std::vector<std::vector<double>> score_estimators(const std::vector<at::Tensor>& features,
                                                  const std::vector<std::int64_t>& labels, std::int64_t num_classes,
                                                  const std::vector<NamedEstimator>& metrics, int threads) {
  const at::Tensor y = at::tensor(labels, at::kLong);
  std::vector<std::vector<double>> scores(features.size(), std::vector<double>(metrics.size()));
  // A task owns its (tap, estimator) pair, so each estimator object is called from one thread at
  // a time (feature_metric.hpp).
  side_by_side(features.size() * metrics.size(), threads, [&](std::size_t task) {
    const std::size_t k = task / metrics.size(), m = task % metrics.size();
    scores[k][m] = metrics[m].metric->score(features[k], y, num_classes);
  });
  return scores;
}

std::vector<double> cka_per_tap(const std::vector<at::Tensor>& pretrained, const std::vector<at::Tensor>& random,
                                int threads) {
  std::vector<double> values(pretrained.size());
  side_by_side(pretrained.size(), threads, [&](std::size_t k) { values[k] = linear_cka(pretrained[k], random[k]); });
  return values;
}

std::vector<TransferabilityRow> transferability_rows(std::size_t tap_index, const std::string& tap,
                                                     const std::vector<Variant>& variants,
                                                     const std::vector<NamedEstimator>& metrics,
                                                     const std::vector<std::vector<double>>& scores, bool with_cka,
                                                     const std::vector<double>& cka) {
  std::vector<TransferabilityRow> rows;
  for (std::size_t m = 0; m < metrics.size(); ++m) {
    TransferabilityRow row;
    row.tap_index = tap_index, row.tap = tap, row.metric = metrics[m].name;
    std::vector<double> random;
    for (std::size_t v = 0; v < variants.size(); ++v)
      if (variants[v].kind == Variant::Kind::pretrained)
        row.pretrained = scores[v][m];
      else
        random.push_back(scores[v][m]);
    row.random_mean = mean(random);
    double ss = 0;
    for (double x : random) ss += (x - row.random_mean) * (x - row.random_mean);
    row.random_sd = random.size() > 1 ? std::sqrt(ss / static_cast<double>(random.size() - 1)) : 0.0;
    rows.push_back(row);
  }
  if (with_cka) {
    TransferabilityRow row;
    row.tap_index = tap_index, row.tap = tap, row.metric = "cka";
    row.pretrained = mean(cka);
    row.random_mean = row.random_sd = std::numeric_limits<double>::quiet_NaN();
    rows.push_back(row);
  }
  return rows;
}

}  // namespace kgain::core
