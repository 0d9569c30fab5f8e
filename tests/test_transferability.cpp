// Transferability estimators and CKA equal independent numpy implementations on real features,
// and CKA has the invariances it is defined by.
#include "test_support.hpp"

#include <fstream>
#include <map>
#include <sstream>

#include "plan/registry.hpp"
#include "analyse/transferability.hpp"

using namespace kgain;
using namespace kgain::core;

namespace {
std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::vector<std::vector<std::string>> rows;
  std::string line, f;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    while (std::getline(ss, f, ',')) fields.push_back(f);
    rows.push_back(fields);
  }
  return rows;
}

// Every row of a probes fixture: features float32 [n, d] and labels.
std::pair<at::Tensor, at::Tensor> all_features(const std::string& set) {
  const auto rows = csv_rows(test::fixtures_dir() + "/probes/" + set + "_features.csv");
  std::vector<float> x;
  std::vector<std::int64_t> y;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    y.push_back(std::stoll(rows[r][1]));
    for (std::size_t d = 2; d < rows[r].size(); ++d) x.push_back(std::stof(rows[r][d]));
  }
  const auto n = static_cast<std::int64_t>(y.size());
  return {torch::from_blob(x.data(), {n, static_cast<std::int64_t>(x.size()) / n}).clone(), torch::tensor(y)};
}
}  // namespace

TEST_CASE("LogME, H-score, shrinkage H-score, TransRate and GBC equal the numpy references", "[transferability]") {
  // tests/fixtures/transferability/make_reference.py computed the references.
  Registry registry;
  registry.add_directory(test::plugin_dir());
  int checked = 0;
  for (const auto& row : csv_rows(test::fixtures_dir() + "/transferability/reference.csv")) {
    const auto [x, y] = all_features(row[0]);
    const double expected = std::stod(row[2]);
    CAPTURE(row[0], row[1], expected);
    if (row[1] == "cka_square") {
      // The numpy reference used float64 features; the fixture's floats are exactly representable.
      CHECK(linear_cka(x, x.to(torch::kDouble).pow(2)) == Approx(expected).epsilon(1e-6));
    } else {
      const auto metric = registry.create<FeatureMetric>(row[1], Options("transferability", ""));
      const double got = metric->score(x, y, y.max().item<std::int64_t>() + 1);
      CAPTURE(got);
      CHECK(got == Approx(expected).epsilon(1e-6).margin(1e-9));
    }
    ++checked;
  }
  CHECK(checked == 12);
}

TEST_CASE("Linear CKA is 1 on itself and invariant to rotation and isotropic scaling", "[transferability]") {
  const auto [x, y] = all_features("pcam");
  (void)y;
  torch::manual_seed(3);
  const at::Tensor q = std::get<0>(torch::linalg_qr(torch::randn({x.size(1), x.size(1)}, torch::kDouble)));
  const at::Tensor xd = x.to(torch::kDouble);
  CHECK(linear_cka(xd, xd) == Approx(1.0).epsilon(1e-12));
  CHECK(linear_cka(xd, 7.5 * xd.mm(q)) == Approx(1.0).epsilon(1e-9));
  const at::Tensor other = torch::randn_like(xd);
  CHECK(linear_cka(xd, other) < 0.2);
  CHECK(linear_cka(xd.mm(q), other) == Approx(linear_cka(xd, other)).epsilon(1e-9));
}

TEST_CASE("Estimators prefer informative features to noise", "[transferability]") {
  Registry registry;
  registry.add_directory(test::plugin_dir());
  torch::manual_seed(0);
  const at::Tensor labels = torch::arange(3).repeat_interleave(60);
  const at::Tensor informative = torch::one_hot(labels, 3).to(torch::kFloat) * 3 + torch::randn({180, 3});
  const at::Tensor noise = torch::randn({180, 3});
  for (const char* name : {"logme", "hscore", "hscore_shrinkage", "transrate", "gbc"}) {
    CAPTURE(name);
    auto m = registry.create<FeatureMetric>(name, Options("transferability", ""));
    CHECK(m->score(informative, labels, 3) > m->score(noise, labels, 3));
  }
}

TEST_CASE("Spearman correlation with ties uses average ranks", "[transferability]") {
  CHECK(spearman({1, 2, 3, 4}, {10, 20, 30, 40}) == Approx(1.0));
  CHECK(spearman({1, 2, 3, 4}, {4, 3, 2, 1}) == Approx(-1.0));
  // scipy.stats.spearmanr([1,2,2,3],[1,2,3,4]) = 0.9486832980505138
  CHECK(spearman({1, 2, 2, 3}, {1, 2, 3, 4}) == Approx(0.9486832980505138).epsilon(1e-12));
  CHECK(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
}

TEST_CASE("LEEP and NCE equal the numpy reference and reach 0 on perfectly informative sources", "[transferability]") {
  // tests/fixtures/transferability/make_reference.py wrote the probabilities and the values.
  std::vector<std::int64_t> labels;
  std::vector<double> probs;
  for (const auto& row : csv_rows(test::fixtures_dir() + "/transferability/source_fixture.csv")) {
    labels.push_back(std::stoll(row[0]));
    for (std::size_t z = 1; z < row.size(); ++z) probs.push_back(std::stod(row[z]));
  }
  const at::Tensor theta = torch::tensor(probs, torch::kDouble).view({static_cast<std::int64_t>(labels.size()), -1});
  std::map<std::string, double> expected;
  for (const auto& row : csv_rows(test::fixtures_dir() + "/transferability/source_reference.csv"))
    expected[row[0]] = std::stod(row[1]);
  CHECK(leep(theta, labels, 3) == Approx(expected["leep"]).epsilon(1e-9));
  CHECK(nce(theta, labels, 3) == Approx(expected["nce"]).epsilon(1e-9));

  // Source class z = label + 2 with certainty: the labels are fully predictable, both reach 0.
  const at::Tensor exact = torch::one_hot(torch::tensor(labels) + 2, 5).to(torch::kDouble);
  CHECK(std::abs(leep(exact, labels, 3)) < 1e-12);
  CHECK(std::abs(nce(exact, labels, 3)) < 1e-12);
  // An uninformative source: both are minus the entropy of the labels (three balanced classes).
  const at::Tensor flat = torch::full({static_cast<std::int64_t>(labels.size()), 5}, 0.2, torch::kDouble);
  CHECK(leep(flat, labels, 3) == Approx(-std::log(3.0)).epsilon(1e-12));
  CHECK(nce(flat, labels, 3) == Approx(-std::log(3.0)).epsilon(1e-12));
}
