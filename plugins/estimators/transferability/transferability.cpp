// Transferability estimators: how well would a classifier do on these features? No probe trained.
//
//   logme             LogME (You et al., ICML 2021): the log marginal evidence of a Bayesian
//                     linear regression from the features to each class's one-hot column,
//                     with its prior and noise precisions set by evidence maximisation, per
//                     image, averaged over classes. The authors' fixed-point iteration.
//   hscore            H-score (Bao et al., ICIP 2019): tr(cov(f)^+ cov(E[f | y])), covariances
//                     with the n - 1 denominator, pseudo-inverse (rcond 1e-15).
//   hscore_shrinkage  H-score with the Ledoit-Wolf shrunk covariance (Ibrahim et al., ICLR
//                     2023): tr(((1 - a) S + a mu I)^+ (1 - a) cov(E[f | y])) on centred features,
//                     a the Ledoit-Wolf shrinkage of scikit-learn's ledoit_wolf.
//   transrate         TransRate (Huang et al., ICML 2022): the coding rate of the centred
//                     features minus the mean coding rate of each class, with
//                     R(Z) = 1/2 logdet(I + Z^T Z / (n eps)), eps = 1e-4.
//   gbc               Gaussian Bhattacharyya coefficient (Pandy et al., CVPR 2022): a
//                     diagonal Gaussian per class, minus the sum of the Bhattacharyya
//                     coefficients exp(-D_B) over ordered pairs of classes. The paper first
//                     projects the features to 64 dimensions with PCA; kgain does not, so the
//                     values differ from the paper's for wide taps (the ranking is what matters).
// All are larger-is-better and computed in float64. The test suite checks each against an
// independent numpy implementation (tests/fixtures/transferability/make_reference.py).
#include <cmath>

#include <torch/torch.h>

#include <kgain/feature_metric.hpp>
#include <kgain/plugin.hpp>

namespace {

using torch::indexing::Slice;

at::Tensor centred(const at::Tensor& f) { return f - f.mean(0, true); }

// Each image's feature replaced by its class mean.
at::Tensor class_means_per_image(const at::Tensor& f, const at::Tensor& y, std::int64_t classes) {
  at::Tensor g = torch::zeros_like(f);
  for (std::int64_t c = 0; c < classes; ++c) {
    const at::Tensor mask = y == c;
    if (mask.sum().item<std::int64_t>() == 0) continue;
    g.index_put_({mask}, f.index({mask}).mean(0));
  }
  return g;
}

at::Tensor covariance(const at::Tensor& f) {
  const at::Tensor z = centred(f);
  return z.t().mm(z) / static_cast<double>(f.size(0) - 1);
}

class LogME : public kgain::FeatureMetric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit LogME(const kgain::Options&) {}
  double score(const at::Tensor& features, const at::Tensor& labels, std::int64_t classes) const override {
    torch::NoGradGuard no_grad;
    const at::Tensor fh = features.to(torch::kFloat64);  // [N, D]
    const at::Tensor f = fh.t();                         // [D, N]
    const double D = static_cast<double>(f.size(0)), N = static_cast<double>(f.size(1));
    // SVD of f f^T: v [D, D], s [D]
    const auto [v, s, vh] = torch::linalg_svd(f.mm(fh), /*full_matrices=*/true);
    double total = 0;
    int counted = 0;
    for (std::int64_t c = 0; c < classes; ++c) {
      const at::Tensor y = (labels == c).to(torch::kFloat64);
      if (y.sum().item<double>() == 0) continue;
      const double epsilon = 1e-5;
      double alpha = 1.0, beta = 1.0, lam = alpha / beta;
      const at::Tensor tmp = vh.mv(f.mv(y));
      double alpha_de = 0, beta_de = 0;
      for (int iteration = 0; iteration < 11; ++iteration) {
        const double gamma = (s / (s + lam)).sum().item<double>();
        const at::Tensor m = v.mv(tmp * beta / (alpha + beta * s));
        alpha_de = m.dot(m).item<double>();
        alpha = gamma / (alpha_de + epsilon);
        beta_de = (y - fh.mv(m)).pow(2).sum().item<double>();
        beta = (N - gamma) / (beta_de + epsilon);
        const double new_lam = alpha / beta;
        if (std::abs(new_lam - lam) / lam < 0.01) break;
        lam = new_lam;
      }
      const double evidence = D / 2.0 * std::log(alpha) + N / 2.0 * std::log(beta) -
                              0.5 * torch::log(alpha + beta * s).sum().item<double>() -
                              beta / 2.0 * (beta_de + epsilon) - alpha / 2.0 * (alpha_de + epsilon) -
                              N / 2.0 * std::log(2 * M_PI);
      total += evidence / N;
      ++counted;
    }
    return counted ? total / counted : std::nan("");
  }
};

class HScore : public kgain::FeatureMetric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit HScore(const kgain::Options&) {}
  double score(const at::Tensor& features, const at::Tensor& labels, std::int64_t classes) const override {
    torch::NoGradGuard no_grad;
    const at::Tensor f = features.to(torch::kFloat64);
    const at::Tensor cov_f = covariance(f), cov_g = covariance(class_means_per_image(f, labels, classes));
    return torch::trace(torch::linalg_pinv(cov_f, 1e-15, /*hermitian=*/false).mm(cov_g)).item<double>();
  }
};

class ShrinkageHScore : public kgain::FeatureMetric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit ShrinkageHScore(const kgain::Options&) {}
  double score(const at::Tensor& features, const at::Tensor& labels, std::int64_t classes) const override {
    torch::NoGradGuard no_grad;
    const at::Tensor x = centred(features.to(torch::kFloat64));
    const double n = static_cast<double>(x.size(0)), p = static_cast<double>(x.size(1));
    // scikit-learn's ledoit_wolf_shrinkage and shrunk covariance.
    const at::Tensor x2 = x.pow(2);
    const at::Tensor emp_cov_trace = x2.sum(0) / n;
    const double mu = emp_cov_trace.sum().item<double>() / p;
    const double beta_ = x2.t().mm(x2).sum().item<double>();
    const double delta_ = x.t().mm(x).pow(2).sum().item<double>() / (n * n);
    double beta = 1.0 / (p * n) * (beta_ / n - delta_);
    double delta = (delta_ - 2.0 * mu * emp_cov_trace.sum().item<double>() + p * mu * mu) / p;
    beta = std::min(beta, delta);
    const double shrinkage = beta == 0 ? 0.0 : beta / delta;
    const at::Tensor emp_cov = x.t().mm(x) / n;
    const at::Tensor shrunk = (1 - shrinkage) * emp_cov + shrinkage * mu * torch::eye(x.size(1), torch::kFloat64);
    const at::Tensor cov_g = covariance(class_means_per_image(x, labels, classes));
    return torch::trace(torch::linalg_pinv(shrunk, 1e-15, false).mm((1 - shrinkage) * cov_g)).item<double>();
  }
};

double coding_rate(const at::Tensor& z, double eps) {
  const double n = static_cast<double>(z.size(0));
  const at::Tensor m = torch::eye(z.size(1), torch::kFloat64) + z.t().mm(z) / (n * eps);
  return 0.5 * std::get<1>(torch::linalg_slogdet(m)).item<double>();
}

class TransRate : public kgain::FeatureMetric {
 public:
  static constexpr std::array declared_options{
      kgain::option::number("eps", "1e-4", "distortion of the coding rate").positive(),
  };

  explicit TransRate(const kgain::Options& options) : eps_(options.get_double("eps")) {}
  double score(const at::Tensor& features, const at::Tensor& labels, std::int64_t classes) const override {
    torch::NoGradGuard no_grad;
    const at::Tensor z = centred(features.to(torch::kFloat64));
    double per_class = 0;
    for (std::int64_t c = 0; c < classes; ++c) {
      const at::Tensor zc = z.index({labels == c});
      if (zc.size(0) > 0) per_class += coding_rate(zc, eps_);
    }
    return coding_rate(z, eps_) - per_class / static_cast<double>(classes);
  }

 private:
  double eps_;
};

class Gbc : public kgain::FeatureMetric {
 public:
  static constexpr auto declared_options = kgain::no_options;
  explicit Gbc(const kgain::Options&) {}
  double score(const at::Tensor& features, const at::Tensor& labels, std::int64_t classes) const override {
    torch::NoGradGuard no_grad;
    const at::Tensor f = features.to(torch::kFloat64);
    std::vector<at::Tensor> means, vars;
    for (std::int64_t c = 0; c < classes; ++c) {
      const at::Tensor fc = f.index({labels == c});
      means.push_back(fc.mean(0));
      vars.push_back(fc.var(0, /*unbiased=*/false) + 1e-12);  // a constant feature must not divide by 0
    }
    double total = 0;
    for (std::int64_t i = 0; i < classes; ++i)
      for (std::int64_t j = 0; j < classes; ++j) {
        if (i == j) continue;
        const at::Tensor var = (vars[i] + vars[j]) / 2;
        const double distance =
            0.125 * ((means[i] - means[j]).pow(2) / var).sum().item<double>() +
            0.5 *
                (torch::log(var).sum() - 0.5 * (torch::log(vars[i]).sum() + torch::log(vars[j]).sum())).item<double>();
        total += std::exp(-distance);
      }
    return -total;
  }
};

}  // namespace

KGAIN_LIBRARY("transferability",
              kgain::make_plugin<LogME>("logme", "1.0.0",
                                        "LogME: evidence of a Bayesian linear model (You et al. 2021)"),
              kgain::make_plugin<HScore>("hscore", "1.0.0", "H-score (Bao et al. 2019)"),
              kgain::make_plugin<ShrinkageHScore>("hscore_shrinkage", "1.0.0",
                                                  "H-score, Ledoit-Wolf shrinkage (Ibrahim et al. 2023)"),
              kgain::make_plugin<TransRate>("transrate", "1.0.0",
                                            "TransRate: coding-rate gain of the labels (Huang et al. 2022)"),
              kgain::make_plugin<Gbc>("gbc", "1.0.0",
                                      "Gaussian Bhattacharyya coefficient, diagonal (Pandy et al. 2022)"))
