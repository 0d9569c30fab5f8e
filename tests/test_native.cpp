// The native backbone: torchvision's architectures built in C++. Checked against torchvision
// itself (names and shapes of every parameter, outputs at every tap of models it saved), against
// the TensorFlow MobileNets in ../shared/models, and against the published MAC counts.
#include "test_support.hpp"
#include "test_plugins.hpp"

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include <kgain/backbone.hpp>
#include "runtime/allocator.hpp"
#include "images/image.hpp"
#include "plan/registry.hpp"

using namespace kgain;
using namespace kgain::core;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;

namespace {

const Registry& registry() { return test::plugins(); }

std::shared_ptr<Backbone> native(const std::string& architecture,
                                 const std::vector<std::pair<std::string, Options::Value>>& extra = {}) {
  return test::native_backbone(architecture, extra);
}
using test::strings;

std::shared_ptr<Backbone> torchscript(const std::string& file, const std::string& container,
                                      const std::vector<std::string>& taps) {
  Options options("backbone", "");
  options.set("file", file);
  options.set("container", container);
  options.set("taps", strings(taps));
  return registry().create<Backbone>("torchscript", options);
}

// Made by tests/fixtures/backbones/make_torchvision_fixtures.py with python3-torchvision, once
// per build tree.
std::string torchvision_fixture(const std::string& file) {
  static const std::string d = kgain::test::test_output_dir() + "/torchvision-fixtures";
  static const std::string dir =  // needs Debian's python3-torchvision (tools/deps.sh installs it)
      test::generated_once(d, "shapes.json", [](const std::string& out) {
        return "/usr/bin/python3 " + test::fixtures_dir() + "/backbones/make_torchvision_fixtures.py " + out +
               " 2>/dev/null";
      });
  return dir + "/" + file;
}

at::Tensor sanity_images(std::int64_t size) {
  at::Tensor batch = torch::empty({2, 3, size, size});
  load_image(test::models_dir() + "/sanity/chelsea.png", {size, "shorter_side_crop"}, batch[0].data_ptr<float>());
  load_image(test::models_dir() + "/sanity/coffee.png", {size, "shorter_side_crop"}, batch[1].data_ptr<float>());
  return batch;
}

float max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<float>(); }

}  // namespace

TEST_CASE("Native architectures have torchvision's parameter and buffer names and shapes", "[native]") {
  // As kgain itself does at start: the 18 networks' freed parameters (up to 550 MB each) are
  // reused, not served by fresh pages the kernel zeroes (allocator.hpp; most of this test's time).
  keep_freed_memory_for_reuse();
  const auto shapes = nlohmann::json::parse(test::slurp(torchvision_fixture("shapes.json")));
  for (const auto& [architecture, expected] : shapes.items()) {
    CAPTURE(architecture);
    // The weights file is the fixture's own shapes: write a state dict of zeros and load it.
    const std::string file = torchvision_fixture(architecture + ".zeros.pt");
    test::write_zeros_state_dict(file, expected);
    // Loading checks every key both ways and every shape; it throws naming any difference.
    CHECK_NOTHROW(native(architecture, {{"weights", file}}));
    std::filesystem::remove(file);
  }
}

TEST_CASE("Native ResNet-18 and DenseNet-121 equal torchvision's scripted models at every tap", "[native]") {
  struct Case {
    std::string architecture, container;
    std::vector<std::string> taps;
  };
  const auto c =
      GENERATE(Case{"resnet18", "", {"conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"}},
               Case{"densenet121",
                    "features",
                    {"features.conv0", "features.norm0", "features.relu0", "features.pool0", "features.denseblock1",
                     "features.transition1", "features.denseblock2", "features.transition2", "features.denseblock3",
                     "features.transition3", "features.denseblock4", "features.norm5"}});
  CAPTURE(c.architecture);
  auto mine = native(c.architecture,
                     {{"weights", torchvision_fixture(c.architecture + ".state_dict.pt")}, {"taps", strings(c.taps)}});
  auto reference = torchscript(torchvision_fixture(c.architecture + ".ts.pt"), c.container, c.taps);
  const at::Tensor images = sanity_images(96);
  const auto a = mine->instantiate(Variant{}, Pooling::avg);
  const auto b = reference->instantiate(Variant{}, Pooling::avg);
  const auto fa = a->extract(images), fb = b->extract(images);
  REQUIRE(fa.size() == c.taps.size());
  for (std::size_t t = 0; t < c.taps.size(); ++t) {
    CAPTURE(c.taps[t]);
    CHECK(max_diff(fa[t], fb[t]) < 1e-4f);
  }
  CHECK(max_diff(a->classify(images), b->classify(images)) < 1e-4f);

  // Parameters at each tap: the sum over the torchvision module's own parameters up to it.
  const auto info = mine->inspect(96);
  auto module = torch::jit::load(torchvision_fixture(c.architecture + ".ts.pt"));
  if (!c.container.empty()) module = module.attr(c.container).toModule();
  std::int64_t sum = 0;
  std::size_t t = 0;
  for (const auto& child : module.named_children()) {
    for (const auto& p : child.value.parameters()) sum += p.numel();
    const std::string path = c.container.empty() ? child.name : c.container + "." + child.name;
    if (t < c.taps.size() && path == c.taps[t]) CHECK(info[t++].parameters == sum);
  }
  CHECK(t == c.taps.size());
}

TEST_CASE("The MobileNet state dicts in ../shared load into the native MobileNets with TensorFlow padding",
          "[native][sanity]") {
  struct Case {
    std::string architecture, stem;
    double width;
    std::int64_t size;
  };
  const auto c = GENERATE(Case{"mobilenet_v2", "mobilenet_v2_tf1_quant", 1.0, 224},
                          Case{"mobilenet_v1", "mobilenet_v1_0.25_128_quant", 0.25, 128});
  CAPTURE(c.architecture);
  auto mine = native(c.architecture, {{"weights", test::models_dir() + "/" + c.stem + ".state_dict.pt"},
                                      {"padding", std::string("tf_same")},
                                      {"width", c.width}});
  CHECK(mine->native_input_size() == c.size);
  Options options("backbone", "");
  options.set("file", test::models_dir() + "/" + c.stem + ".ts.pt");
  options.set("native_input_size", c.size);
  auto reference = registry().create<Backbone>("torchscript", options);
  const at::Tensor images = sanity_images(c.size);
  const at::Tensor logits = mine->instantiate(Variant{}, Pooling::avg)->classify(images);
  CHECK(max_diff(logits, reference->instantiate(Variant{}, Pooling::avg)->classify(images)) < 1e-4f);
  const std::int64_t cat = logits[0].argmax().item<std::int64_t>();
  CHECK((cat == 281 || cat == 282 || cat == 285));
  CHECK(logits[1].argmax().item<std::int64_t>() == 967);
  // Every tap too (the default taps are the children of `features`, as the TorchScript file's).
  const auto fa = mine->instantiate(Variant{}, Pooling::avg)->extract(images);
  const auto fb = reference->instantiate(Variant{}, Pooling::avg)->extract(images);
  REQUIRE(fa.size() == fb.size());
  for (std::size_t t = 0; t < fa.size(); ++t) CHECK(max_diff(fa[t], fb[t]) < 1e-4f);

  // Symmetric padding runs, but is another network: the outputs move.
  auto symmetric = native(c.architecture, {{"weights", test::models_dir() + "/" + c.stem + ".state_dict.pt"},
                                           {"input_range", std::string("tf")},
                                           {"width", c.width}});
  CHECK(max_diff(symmetric->instantiate(Variant{}, Pooling::avg)->classify(images), logits) > 0.1f);
}

TEST_CASE("The iNaturalist MobileNetV2 state dicts load with their own heads and name their sanity images",
          "[native][sanity]") {
  struct Case {
    std::string stem, image;
    std::int64_t classes;
    std::string expected;  // in the name the labels file gives the top class
  };
  // The README names the bird a Black-capped Chickadee (0.92); with the labels file the top class
  // (index 659, 0.92 here and in Python) reads "Carolina Chickadee", the line above: the labels
  // file and the README disagree by one for birds (not for insects). Either way, a chickadee.
  const auto c = GENERATE(Case{"mobilenet_v2_inat_bird_quant", "bird.png", 964, "Chickadee)"},
                          Case{"mobilenet_v2_inat_insect_quant", "dragonfly.png", 1021, "(Thornbush Dasher)"});
  CAPTURE(c.stem);
  auto mine = native("mobilenet_v2", {{"weights", test::models_dir() + "/" + c.stem + ".state_dict.pt"},
                                      {"padding", std::string("tf_same")}});
  at::Tensor image = torch::empty({1, 3, 224, 224});
  load_image(test::models_dir() + "/sanity/" + c.image, {224, "shorter_side_crop"}, image[0].data_ptr<float>());
  const at::Tensor logits = mine->instantiate(Variant{}, Pooling::avg)->classify(image);
  REQUIRE(logits.size(1) == c.classes);  // the head's size came from the file
  const auto labels = test::lines(test::slurp(test::models_dir() + "/" + c.stem + ".labels.txt"));
  REQUIRE(static_cast<std::int64_t>(labels.size()) == c.classes);
  CHECK_THAT(labels[static_cast<std::size_t>(logits[0].argmax().item<std::int64_t>())], Contains(c.expected));
  Options options("backbone", "");
  options.set("file", test::models_dir() + "/" + c.stem + ".ts.pt");
  auto reference = registry().create<Backbone>("torchscript", options);
  CHECK(max_diff(logits, reference->instantiate(Variant{}, Pooling::avg)->classify(image)) < 1e-4f);
  // An explicit num_classes that disagrees with the file is a shape mismatch, named.
  REQUIRE_THROWS_WITH(native("mobilenet_v2", {{"weights", test::models_dir() + "/" + c.stem + ".state_dict.pt"},
                                              {"padding", std::string("tf_same")},
                                              {"num_classes", std::int64_t{1000}}}),
                      Contains("shape or type mismatches") && Contains("classifier.1.weight"));
}

TEST_CASE("Multiply-accumulates per tap match the published counts", "[native]") {
  // torchvision's model cards: ResNet-18 1.81 GFLOPS, ResNet-50 4.09, MobileNetV2 0.30, at 224 px
  // (their "FLOPS" are multiply-accumulates of convolutions and linear layers).
  struct Case {
    std::string architecture;
    double gmacs;
  };
  const auto c = GENERATE(Case{"resnet18", 1.81}, Case{"resnet50", 4.09}, Case{"mobilenet_v2", 0.30});
  CAPTURE(c.architecture);
  auto backbone = native(c.architecture);
  const auto info = backbone->inspect(224);
  // The last default tap ends the trunk; the classifier adds in x out.
  const double fc =
      c.architecture == "mobilenet_v2" ? 1280.0 * 1000 : (c.architecture == "resnet18" ? 512.0 : 2048.0) * 1000;
  const double total = static_cast<double>(info.back().macs) + fc;
  CHECK(std::abs(total / 1e9 - c.gmacs) / c.gmacs < 0.02);
  for (std::size_t t = 1; t < info.size(); ++t) CHECK(info[t].macs > info[t - 1].macs);
  // A first 7x7 stride-2 convolution on 224 px: 64 x 112 x 112 x 3 x 49 MACs.
  if (c.architecture == "resnet18") {
    auto conv1 = native("resnet18", {{"taps", strings({"conv1"})}});
    CHECK(conv1->inspect(224).front().macs == 64LL * 112 * 112 * 3 * 49);
  }
}

TEST_CASE("Native random weights: deterministic per seed, torchvision's rules, different per seed", "[native]") {
  auto backbone = native("resnet18");
  const at::Tensor images = sanity_images(64);
  const auto a = backbone->instantiate(Variant{Variant::Kind::random, 3}, Pooling::avg)->extract(images);
  const auto b = backbone->instantiate(Variant{Variant::Kind::random, 3}, Pooling::avg)->extract(images);
  const auto c = backbone->instantiate(Variant{Variant::Kind::random, 4}, Pooling::avg)->extract(images);
  REQUIRE(a.size() == 9);  // maxpool + 8 blocks
  for (std::size_t t = 0; t < a.size(); ++t) CHECK(torch::equal(a[t], b[t]));
  CHECK(!torch::equal(a[4], c[4]));
  // No weights file: only random variants exist.
  CHECK(!backbone->has_pretrained_weights());
  REQUIRE_THROWS_WITH(backbone->instantiate(Variant{}, Pooling::avg), Contains("no `weights` file"));
}

TEST_CASE("Optimized and channels-last extraction equal the plain module's features", "[native]") {
  const auto architecture = GENERATE(std::string("resnet18"), std::string("mobilenet_v2"), std::string("densenet121"));
  CAPTURE(architecture);
  const at::Tensor images = sanity_images(96);
  const Variant variant{Variant::Kind::random, 1};
  const auto plain =
      native(architecture, {{"optimize", false}})->instantiate(variant, Pooling::avgmax)->extract(images);
  const auto fast = native(architecture)->instantiate(variant, Pooling::avgmax)->extract(images);
  const auto nhwc =
      native(architecture, {{"channels_last", true}})->instantiate(variant, Pooling::avgmax)->extract(images);
  REQUIRE(plain.size() == fast.size());
  for (std::size_t t = 0; t < plain.size(); ++t) {
    const float scale = std::max(1.0f, plain[t].abs().max().item<float>());
    CHECK(max_diff(plain[t], fast[t]) / scale < 1e-4f);
    CHECK(max_diff(plain[t], nhwc[t]) / scale < 1e-4f);
  }
}

TEST_CASE("Batch-norm recalibration re-estimates the statistics on the given images", "[native]") {
  auto backbone = native("resnet18", {{"taps", strings({"bn1", "layer4"})}});
  // 32 images (one calibration batch): after recalibration, bn1's output has mean beta = 0 over
  // them, per channel; with the initial statistics (mean 0, variance 1) it has not.
  at::Tensor images = torch::rand({32, 3, 64, 64}, at::detail::createCPUGenerator(0)) * 2 + 1;
  Variant variant{Variant::Kind::random, 2};
  const auto stale = backbone->instantiate(variant, Pooling::avg)->extract(images);
  variant.batch_norm_calibration = images;
  const auto recalibrated = backbone->instantiate(variant, Pooling::avg)->extract(images);
  CHECK(recalibrated[0].mean(0).abs().max().item<float>() < 1e-4f);
  CHECK(stale[0].mean(0).abs().max().item<float>() > 0.01f);
  CHECK(backbone->can_recalibrate_batch_norm());
}

TEST_CASE("A state dict that does not fit names every offending key", "[native]") {
  const std::string resnet18 = torchvision_fixture("resnet18.state_dict.pt");
  // ResNet-34 has more blocks: the file lacks them.
  REQUIRE_THROWS_WITH(native("resnet34", {{"weights", resnet18}}),
                      Contains(resnet18) && Contains("does not fit resnet34") && Contains("missing keys") &&
                          Contains("layer1.2.conv1.weight") && Contains("layer3.5.bn2.running_var"));
  // Another classifier size: a shape mismatch naming the key and both shapes.
  REQUIRE_THROWS_WITH(native("resnet18", {{"weights", resnet18}, {"num_classes", std::int64_t{2}}}),
                      Contains("2 shape or type mismatches: fc.weight (file [1000, 512], model [2, 512]), fc.bias "
                               "(file [1000], model [2])"));
  REQUIRE_THROWS_WITH(native("resnet18", {{"weights", test::models_dir() + "/imagenet_labels_1000.txt"}}),
                      Contains("cannot read") && Contains("torch.save(model.state_dict(), path)"));
  REQUIRE_THROWS_WITH(native("resnet19"), Contains("unknown architecture 'resnet19'") && Contains("resnet18"));
  REQUIRE_THROWS_WITH(native("resnet18", {{"taps", strings({"layer5"})}}), Contains("'layer5' is not a tap point"));
}

TEST_CASE("Native architectures register themselves: every family's names are known and kgain list names the families",
          "[native]") {
  // Each file registers its names where it builds them (architectures.hpp); the list an error
  // gives and the library's line in `kgain list` come from those registrations alone.
  std::string summary;
  for (const auto& plugin : test::plugins().plugins())
    if (plugin.info.name == std::string("native")) summary = plugin.info.summary;
  for (const char* family : {"ResNet", "VGG", "DenseNet", "MobileNet", "ConvNeXt", "EfficientNet", "ViT", "Swin"})
    CHECK_THAT(summary, Contains(family));
  std::string known;
  try {
    native("resnet19");
  } catch (const std::exception& error) {
    known = error.what();
  }
  for (const char* name : {"resnet152", "vgg19_bn", "densenet201", "mobilenet_v1", "convnext_large", "efficientnet_b7",
                           "vit_h_14", "vit", "swin_b"})
    CHECK_THAT(known, Contains(std::string(" ") + name + ",") || EndsWith(std::string(" ") + name));
}
