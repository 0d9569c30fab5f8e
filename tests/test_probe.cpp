// The logistic probe: perfect on separable data, and scikit-learn's model on real features.
#include "test_support.hpp"

#include <fstream>
#include <sstream>

#include <kgain/core/registry.hpp>
#include <kgain/probe.hpp>

using namespace kgain;
using namespace kgain::core;

namespace {

std::shared_ptr<Probe> make_logistic(double C) {
  static Registry registry = [] {
    Registry r;
    r.add_directory(test::plugin_dir());
    return r;
  }();
  Options options("probe", "");
  options.set("C", C);
  return registry.create<Probe>(PluginKind::probe, "logistic", options);
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string f;
    while (std::getline(ss, f, ',')) fields.push_back(f);
    rows.push_back(fields);
  }
  return rows;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const auto ranks = [](const std::vector<double>& v) {
    std::vector<std::size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](std::size_t i, std::size_t j) { return v[i] < v[j]; });
    std::vector<double> r(v.size());
    for (std::size_t k = 0; k < idx.size(); ++k) r[idx[k]] = static_cast<double>(k);
    return r;
  };
  const auto ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  double d2 = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d2 += (ra[i] - rb[i]) * (ra[i] - rb[i]);
  return 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
}

}  // namespace

TEST_CASE("Logistic probe reaches 100% on linearly separable classes", "[probe]") {
  // Three Gaussian blobs far apart in 10 dimensions, 40 images each.
  torch::manual_seed(0);
  const at::Tensor centres = torch::eye(10).slice(0, 0, 3) * 20.0;
  const at::Tensor labels = torch::arange(3).repeat_interleave(40);
  const at::Tensor features = centres.index_select(0, labels) + torch::randn({120, 10});
  auto probe = make_logistic(1.0);
  probe->fit(features, labels, 3, 0);
  const at::Tensor proba = probe->predict_proba(features);
  CHECK(proba.sizes() == at::IntArrayRef({120, 3}));
  CHECK(proba.sum(1).sub(1).abs().max().item<double>() < 1e-9);
  CHECK(proba.argmax(1).eq(labels).all().item<bool>());
}

TEST_CASE("Logistic probe agrees with scikit-learn on real MobileNet features", "[probe]") {
  // tests/fixtures/logistic/make_reference.py made both files (see its docstring).
  const auto data = read_csv(test::fixtures_dir() + "/logistic/features.csv");
  const auto reference = read_csv(test::fixtures_dir() + "/logistic/reference.csv");
  std::vector<float> train_x, test_x;
  std::vector<std::int64_t> train_y, test_y;
  const std::size_t dims = data[0].size() - 2;
  for (std::size_t r = 1; r < data.size(); ++r) {
    auto& x = data[r][0] == "train" ? train_x : test_x;
    (data[r][0] == "train" ? train_y : test_y).push_back(std::stoll(data[r][1]));
    for (std::size_t d = 0; d < dims; ++d) x.push_back(std::stof(data[r][2 + d]));
  }
  const auto tensor = [&](std::vector<float>& v) { return torch::from_blob(v.data(), {static_cast<std::int64_t>(v.size() / dims), static_cast<std::int64_t>(dims)}).clone(); };
  const at::Tensor xtr = tensor(train_x), xte = tensor(test_x);
  const at::Tensor ytr = torch::tensor(train_y), yte = torch::tensor(test_y);
  REQUIRE(xtr.size(0) == 200);
  REQUIRE(xte.size(0) == 200);

  for (std::size_t r = 1; r < reference.size(); ++r) {
    const double C = std::stod(reference[r][0]), sklearn_accuracy = std::stod(reference[r][1]);
    CAPTURE(C, sklearn_accuracy);
    auto probe = make_logistic(C);
    probe->fit(xtr, ytr, 2, 0);
    const at::Tensor proba = probe->predict_proba(xte);
    const double accuracy = proba.argmax(1).eq(yte).to(torch::kDouble).mean().item<double>();
    CAPTURE(accuracy);
    CHECK(std::abs(accuracy - sklearn_accuracy) <= 0.01);
    std::vector<double> ours, theirs;
    for (std::int64_t i = 0; i < proba.size(0); ++i) {
      ours.push_back(proba[i][1].item<double>());
      theirs.push_back(std::stod(reference[r][2 + i]));
    }
    CHECK(spearman(ours, theirs) > 0.99);
    double max_diff = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) max_diff = std::max(max_diff, std::abs(ours[i] - theirs[i]));
    CAPTURE(max_diff);
    CHECK(max_diff < 0.02);  // the same convex optimum, reached by two solvers
  }
}
