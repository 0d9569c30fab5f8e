// Config errors name the file, line:column and key, and suggest the fix.
#include "test_support.hpp"

#include "config/config.hpp"

using namespace kgain::core;
using Catch::Matchers::Contains;

namespace {
const std::string minimal =
    "[dataset]\nplugin = \"manifest\"\nroot = \"data\"\n[backbone]\nplugin = \"torchscript\"\nfile = \"m.ts.pt\"\n";
}

TEST_CASE("A minimal config gets the protocol's defaults", "[config]") {
  const Config c = parse_config(minimal, "/studies/pcam.toml");
  CHECK(c.name == "pcam");
  CHECK(c.base_dir == "/studies");
  CHECK(c.dataset.plugin == "manifest");
  CHECK(c.dataset.options.get_path("root", "") == "/studies/data");
  CHECK(c.random_seeds == std::vector<std::uint64_t>{0, 1, 2});
  CHECK(c.folds == 5);
  CHECK(c.split_strategy == "auto");
  REQUIRE(c.probes.size() == 1);
  CHECK(c.probes[0].plugin == "logistic");
  REQUIRE(c.metrics.size() == 3);
  CHECK(c.metrics[0].plugin == "accuracy");
  CHECK(c.pooling == kgain::Pooling::avg);
  // The resolved config reads back to the same settings.
  const Config again = parse_config(c.resolved_toml, "/elsewhere/resolved.toml");
  CHECK(again.resolved_toml == c.resolved_toml);
  CHECK(again.dataset.options.get_path("root", "") == "/studies/data");
}

TEST_CASE("Malformed configs give line:column, key and fix", "[config]") {
  struct Case {
    const char* what;
    std::string text;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases{
      {"TOML syntax error", minimal + "[run]\nthreads = = 2\n", {"run.toml:8:11", "not valid TOML"}},
      {"unknown key with a suggestion",
       minimal + "[run]\nthrads = 2\n",
       {"run.toml:8:1", "[run] unknown key 'thrads'", "did you mean 'threads'?"}},
      {"wrong type",
       minimal + "[run]\nbatch_size = \"big\"\n",
       {"run.toml:8:14", "[run] batch_size", "expected an integer, found a string"}},
      {"out of range",
       minimal + "[splits]\nfolds = 1\n",
       {"run.toml:8:9", "[splits] folds", "between 2 and 100 (received 1)"}},
      {"value not among the choices",
       minimal + "[features]\npooling = \"median\"\n",
       {"run.toml:8:11", "[features] pooling", "\"avg\", \"max\", \"avgmax\"", "received \"median\""}},
      {"unknown section",
       minimal + "[variant]\nrandom_seeds = [1]\n",
       {"run.toml:7:2", "unknown section 'variant'", "did you mean [variants]?"}},
      {"missing plugin key",
       "[dataset]\nroot = \"data\"\n[backbone]\nplugin = \"torchscript\"\n",
       {"run.toml:1:1", "[dataset] has no 'plugin' key"}},
      {"missing dataset table",
       "[backbone]\nplugin = \"torchscript\"\n",
       {"run.toml", "no [dataset] table", "plugin = \"manifest\""}},
      {"seed listed twice",
       minimal + "[variants]\nrandom_seeds = [1, 1]\n",
       {"run.toml:8:16", "[variants] random_seeds", "listed twice"}},
      {"negative seed", minimal + "[variants]\nrandom_seeds = [-1]\n", {"run.toml:8:17", "non-negative integers"}},
      {"section that is not a table", "probe = \"logistic\"\n" + minimal, {"run.toml:1:9", "'probe' must be a table"}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    try {
      parse_config(c.text, "run.toml");
      FAIL("no error for: " << c.what);
    } catch (const ConfigError& e) {
      const std::string message = e.what();
      INFO(message);
      for (const auto& part : c.expected) CHECK_THAT(message, Contains(part));
    }
  }
}

TEST_CASE("Several probes are [[probe]] tables with distinct names", "[config]") {
  const Config c = parse_config(
      minimal + "[[probe]]\nplugin = \"logistic\"\nC = 0.1\n[[probe]]\nplugin = \"knn\"\nk = 7\nseed = 3\n",
      "run.toml");
  REQUIRE(c.probes.size() == 2);
  CHECK(c.probes[1].name == "knn");
  CHECK(c.probe_seeds[1] == 3);
  CHECK(parse_config(c.resolved_toml, "r.toml").probes.size() == 2);
  REQUIRE_THROWS_WITH(parse_config(minimal + "[[probe]]\nplugin = \"knn\"\n[[probe]]\nplugin = \"knn\"\n", "run.toml"),
                      Contains("two probes are named 'knn'"));
}

TEST_CASE("A missing config file is an error naming it", "[config]") {
  REQUIRE_THROWS_WITH(load_config("/nonexistent/study.toml"),
                      Contains("/nonexistent/study.toml") && Contains("does not exist"));
}

TEST_CASE("Suggestions come from edit distance", "[config]") {
  CHECK(closest("contaner", {"file", "container", "taps"}) == "container");
  CHECK(closest("zzzzzzzz", {"file", "container"}).empty());
}

TEST_CASE("A run directory made by an earlier kgain (resolved config without today's keys) holds the same measurement",
          "[config]") {
  const std::string text =
      "[dataset]\nplugin = \"folder\"\nroot = \".\"\n[backbone]\nplugin = \"native\"\narchitecture = \"resnet18\"\n";
  const std::string today = parse_config(text, "/tmp/study.toml").resolved_toml;
  // What an earlier kgain wrote: the same config before [features] storage existed.
  std::string earlier = today;
  const auto at = earlier.find("storage = 'float32'\n");
  REQUIRE(at != std::string::npos);
  earlier.erase(at, std::string("storage = 'float32'\n").size());
  CHECK(same_measurement(earlier, today));
  // A real difference in the features still makes it another measurement.
  const std::string half = parse_config(text + "[features]\nstorage = \"float16\"\n", "/tmp/study.toml").resolved_toml;
  CHECK_FALSE(same_measurement(half, today));
  CHECK_FALSE(same_measurement(earlier, half));
}

TEST_CASE("The resolved config keeps every option of a metric or transferability estimator table, one option included",
          "[config]") {
  const std::string text = minimal +
                           "[metrics]\nnames = [\"accuracy\", \"top_k_accuracy\"]\n[metrics.top_k_accuracy]\nk = 3\n" +
                           "[transferability]\nnames = [\"gbc\"]\n[transferability.gbc]\nname = \"GBC\"\n";
  const Config c = parse_config(text, "/studies/pcam.toml");
  const Config again = parse_config(c.resolved_toml, "/studies/resolved.toml");
  REQUIRE(again.metrics.size() == 2);
  CHECK(again.metrics[1].options.get_int("k", 2) == 3);
  REQUIRE(again.estimators.size() == 1);
  CHECK(again.estimators[0].name == "GBC");
  CHECK(again.resolved_toml == c.resolved_toml);
}
