// The registry loads real plugin libraries from disk and refuses broken ones with clear reasons.
#include "test_support.hpp"

#include "config/config.hpp"
#include "plan/registry.hpp"
#include <kgain/dataset.hpp>
#include <kgain/metric.hpp>

#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

using namespace kgain;
using namespace kgain::core;
using Catch::Matchers::Contains;

TEST_CASE("The built plugin libraries load from disk and create working plugins", "[registry]") {
  Registry registry;
  registry.add_directory(test::plugin_dir());
  CHECK(registry.refused().empty());
  for (const char* name : {"accuracy", "balanced_accuracy", "macro_f1"})
    CHECK_NOTHROW(registry.find(PluginKind::metric, name));
  CHECK(registry.find(PluginKind::backbone, "torchscript").library_path.find("kgain_torchscript.so") !=
        std::string::npos);

  // A metric from its library computes: 3 of 4 right.
  auto accuracy = registry.create<Metric>("accuracy", Options("metrics.accuracy", ""));
  Predictions p;
  p.num_classes = 2;
  p.labels = {0, 1, 1, 0};
  p.scores = {0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.7, 0.3};
  CHECK(accuracy->score(p) == Approx(0.75));

  // A dataset from its library reads the real LC25000 manifest.
  Options options("dataset", "");
  options.set("root", test::data_dir() + "/lc25000-lung-mini");
  auto dataset = registry.create<Dataset>("manifest", options);
  CHECK(dataset->class_names() == std::vector<std::string>{"lung_aca", "lung_n", "lung_scc"});
  CHECK(dataset->samples().size() == 1800);
}

TEST_CASE("A library built for another ABI version is refused, naming both versions", "[registry]") {
  Registry registry;
  registry.add_directory(test::fixture_plugin_dir("wrong_abi"));
  REQUIRE(registry.refused().size() == 1);
  CHECK_THAT(registry.refused()[0].reason, Contains("kgain plugin ABI version 999") &&
                                               Contains("supports ABI version " + std::to_string(KGAIN_ABI_VERSION)) &&
                                               Contains("rebuild the plugin"));
  CHECK(registry.plugins().empty());
  // Asked for explicitly, the same library is an error that names the file.
  Registry direct;
  const std::string path = test::fixture_plugin_dir("wrong_abi") + "/wrong_abi.so";
  REQUIRE_THROWS_AS(direct.add_library(path), RegistryError);
  REQUIRE_THROWS_WITH(Registry().add_library(path), Contains(path) && Contains("ABI version 999"));
}

TEST_CASE("A library built against another LibTorch is refused with both versions", "[registry]") {
  Registry registry;
  registry.add_directory(test::fixture_plugin_dir("wrong_torch"));
  REQUIRE(registry.refused().size() == 1);
  CHECK_THAT(registry.refused()[0].reason,
             Contains("LibTorch 0.4.0") && Contains(std::string("kgain runs LibTorch ") + TORCH_VERSION));
}

TEST_CASE("A shared library without the entry point is refused, not loaded", "[registry]") {
  Registry registry;
  registry.add_directory(test::fixture_plugin_dir("no_entry_point"));
  REQUIRE(registry.refused().size() == 1);
  CHECK_THAT(registry.refused()[0].reason, Contains("no 'kgain_library' entry point"));
}

TEST_CASE("An unknown plugin name lists the available plugins and the refused libraries", "[registry]") {
  Registry registry;
  registry.add_directory(test::plugin_dir());
  registry.add_directory(test::fixture_plugin_dir("wrong_abi"));
  REQUIRE_THROWS_WITH(registry.find(PluginKind::metric, "acuracy"),
                      Contains("no metric plugin named 'acuracy'") &&
                          Contains("Available metric plugins: accuracy, balanced_accuracy, macro_f1") &&
                          Contains("wrong_abi.so") && Contains("kgain list"));
}

TEST_CASE("An unknown plugin in a config is an error listing the available ones", "[registry][config]") {
  const Config c = parse_config("[dataset]\nplugin = \"manifest\"\nroot = \"x\"\n[backbone]\nplugin = \"resnet9000\"\n",
                                "study.toml");
  Registry registry;
  registry.add_directory(test::plugin_dir());
  REQUIRE_THROWS_WITH(
      registry.create<Backbone>(c.backbone.plugin, c.backbone.options),
      Contains("no backbone plugin named 'resnet9000'") && Contains("Available backbone plugins: native, torchscript"));
}

TEST_CASE("A plugin whose factory throws is reported with its name and library", "[registry]") {
  Registry registry;
  registry.add_directory(test::fixture_plugin_dir("throwing_factory"));
  REQUIRE(registry.refused().empty());
  REQUIRE_THROWS_WITH(registry.create<Metric>("broken_metric", Options("metrics.broken_metric", "")),
                      Contains("metric plugin 'broken_metric'") && Contains("throwing_factory.so") &&
                          Contains("the reference table is missing"));
}

TEST_CASE("A plugin option nobody reads is an unknown key with a suggestion", "[registry][config]") {
  const Config c =
      parse_config("[dataset]\nplugin = \"manifest\"\nroot = \"" + test::data_dir() +
                       "/pcam-mini\"\n[backbone]\nplugin = \"torchscript\"\n"
                       "file = \"" +
                       test::models_dir() + "/mobilenet_v1_0.25_128_quant.ts.pt\"\ncontaner = \"features\"\n",
                   "study.toml");
  Registry registry;
  registry.add_directory(test::plugin_dir());
  REQUIRE_THROWS_WITH(registry.create<Backbone>(c.backbone),
                      Contains("study.toml:7:1") && Contains("unknown key 'contaner'") &&
                          Contains("did you mean 'container'?") && Contains("for backbone plugin 'torchscript'"));
}

TEST_CASE("A plugin's kgain::log messages reach the core's log with its name and level", "[registry]") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  sink->set_pattern("%l %v");
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  spdlog::set_level(spdlog::level::info);
  {
    Registry registry;
    registry.add_directory(test::fixture_plugin_dir("logging_metric"));
    REQUIRE(registry.refused().empty());
    auto metric = registry.create<Metric>("logging_metric", Options("metrics.logging_metric", ""));
    Predictions p;
    p.num_classes = 2;
    p.labels = {0, 1, 1};
    p.scores = {0.9, 0.1, 0.2, 0.8, 0.6, 0.4};
    CHECK(metric->score(p) == 0.5);
  }
  spdlog::set_default_logger(previous);
  CHECK_THAT(captured.str(), Contains("warning logging_metric: created for [metrics.logging_metric]"));
  CHECK_THAT(captured.str(), Contains("info logging_metric: scored 3 images"));
}

TEST_CASE("A plugin option of the wrong type names the place, key and types", "[registry][config]") {
  const Config c = parse_config(
      "[dataset]\nplugin = \"manifest\"\nroot = \"x\"\n[backbone]\nplugin = \"t\"\n[probe]\nplugin = \"logistic\"\nC = "
      "\"strong\"\n",
      "study.toml");
  Registry registry;
  registry.add_directory(test::plugin_dir());
  REQUIRE_THROWS_WITH(
      registry.create<Probe>("logistic", c.probes[0].options),
      Contains("study.toml:8:1") && Contains("[probe] C: expected a number, found the string \"strong\""));
  const Config negative =
      parse_config("[dataset]\nplugin = \"manifest\"\n[backbone]\nplugin = \"t\"\n[probe]\nC = -1\n", "study.toml");
  REQUIRE_THROWS_WITH(registry.create<Probe>("logistic", negative.probes[0].options),
                      Contains("study.toml:6:1") && Contains("must be positive (received -1"));
}
