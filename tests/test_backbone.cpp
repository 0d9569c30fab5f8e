// The torchscript backbone: real ImageNet weights know natural images, random weights do not,
// and one pass gives the same features as the network cut after each tap.
#include "test_support.hpp"

#include <kgain/backbone.hpp>
#include "images/image.hpp"
#include "plan/registry.hpp"

using namespace kgain;
using namespace kgain::core;

namespace {

std::shared_ptr<Backbone> make_backbone(const std::string& model, std::int64_t native_size, bool optimize = true) {
  static Registry registry = [] {
    Registry r;
    r.add_directory(test::plugin_dir());
    return r;
  }();
  Options options("backbone", "");
  options.set("file", test::models_dir() + "/" + model);
  options.set("native_input_size", native_size);
  options.set("optimize", optimize);
  return registry.create<Backbone>("torchscript", options);
}

// chelsea (a tabby cat) and coffee (an espresso), resized and centre-cropped as torchvision does.
at::Tensor sanity_images(std::int64_t size) {
  at::Tensor batch = torch::empty({2, 3, size, size});
  load_image(test::models_dir() + "/sanity/chelsea.png", {size, "shorter_side_crop"}, batch[0].data_ptr<float>());
  load_image(test::models_dir() + "/sanity/coffee.png", {size, "shorter_side_crop"}, batch[1].data_ptr<float>());
  return batch;
}

}  // namespace

TEST_CASE("Pretrained MobileNetV2 names the cat and the espresso, random weights do not", "[backbone][sanity]") {
  auto backbone = make_backbone("mobilenet_v2_tf1_quant.ts.pt", 224);
  const at::Tensor images = sanity_images(224);
  const at::Tensor logits = backbone->instantiate(Variant{}, Pooling::avg)->classify(images);
  REQUIRE(logits.sizes() == at::IntArrayRef({2, 1000}));
  const std::int64_t cat = logits[0].argmax().item<std::int64_t>(), drink = logits[1].argmax().item<std::int64_t>();
  CAPTURE(cat, drink);
  // ImageNet indices: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso.
  CHECK((cat == 281 || cat == 282 || cat == 285));
  CHECK(drink == 967);

  const at::Tensor random_logits =
      backbone->instantiate(Variant{Variant::Kind::random, 0}, Pooling::avg)->classify(images);
  CHECK((random_logits - logits).abs().max().item<float>() > 1.0f);
  CHECK(!(random_logits[0].argmax().item<std::int64_t>() == cat &&
          random_logits[1].argmax().item<std::int64_t>() == 967));
}

TEST_CASE("Random weights are deterministic per seed and differ between seeds", "[backbone]") {
  auto backbone = make_backbone("mobilenet_v1_0.25_128_quant.ts.pt", 128);
  const at::Tensor images = sanity_images(128);
  const auto a = backbone->instantiate(Variant{Variant::Kind::random, 5}, Pooling::avg)->extract(images);
  const auto b = backbone->instantiate(Variant{Variant::Kind::random, 5}, Pooling::avg)->extract(images);
  const auto c = backbone->instantiate(Variant{Variant::Kind::random, 6}, Pooling::avg)->extract(images);
  REQUIRE(a.size() == 14);
  for (std::size_t t = 0; t < a.size(); ++t) CHECK(torch::equal(a[t], b[t]));
  CHECK(!torch::equal(a[3], c[3]));
}

TEST_CASE("One-pass features equal the truncated network's, at every tap", "[backbone]") {
  struct Model {
    std::string file;
    std::int64_t size;
    std::size_t taps;
  };
  const auto model =
      GENERATE(Model{"mobilenet_v2_tf1_quant.ts.pt", 224, 19}, Model{"mobilenet_v1_0.25_128_quant.ts.pt", 128, 14});
  const auto variant = GENERATE(Variant{Variant::Kind::pretrained, 0}, Variant{Variant::Kind::random, 1});
  CAPTURE(model.file, variant.name());
  auto backbone = make_backbone(model.file, model.size);
  const at::Tensor images = sanity_images(model.size);
  const auto one_pass = backbone->instantiate(variant, Pooling::avg)->extract(images);
  REQUIRE(one_pass.size() == model.taps);

  // Reference: the plainly loaded module, weights drawn the same way (the unoptimized
  // extractor), cut after tap l by running features[0..l] one by one, then average pooled.
  auto plain = make_backbone(model.file, model.size, /*optimize=*/false);
  const auto unoptimized = plain->instantiate(variant, Pooling::avg)->extract(images);
  torch::jit::Module module = torch::jit::load(test::models_dir() + "/" + model.file);
  module.eval();
  if (variant.kind == Variant::Kind::pretrained) {
    const auto features = module.attr("features").toModule();
    torch::NoGradGuard no_grad;
    for (std::size_t l = 0; l < model.taps; ++l) {
      at::Tensor x = images;
      for (std::size_t i = 0; i <= l; ++i) x = features.attr(std::to_string(i)).toModule().forward({x}).toTensor();
      const at::Tensor truncated = x.mean({2, 3});
      CAPTURE(l);
      CHECK((one_pass[l] - truncated).abs().max().item<float>() < 1e-4f);
    }
  }
  for (std::size_t l = 0; l < model.taps; ++l) {
    CAPTURE(l);
    const float scale = std::max(1.0f, unoptimized[l].abs().max().item<float>());
    CHECK((one_pass[l] - unoptimized[l]).abs().max().item<float>() < 1e-4f * scale);
  }
}

TEST_CASE("Running the children in order then the head reproduces forward()", "[backbone]") {
  // The premise of tapping children: the container's children are what the network runs first.
  torch::jit::Module module = torch::jit::load(test::models_dir() + "/mobilenet_v2_tf1_quant.ts.pt");
  module.eval();
  torch::NoGradGuard no_grad;
  const at::Tensor images = sanity_images(224);
  at::Tensor x = images;
  const auto features = module.attr("features").toModule();
  for (int i = 0; i < 19; ++i) x = features.attr(std::to_string(i)).toModule().forward({x}).toTensor();
  const at::Tensor logits = module.attr("classifier").toModule().forward({x.mean({2, 3})}).toTensor();
  CHECK((logits - module.forward({images}).toTensor()).abs().max().item<float>() < 1e-4f);
}

TEST_CASE("inspect reports shapes and parameters that add up", "[backbone]") {
  auto backbone = make_backbone("mobilenet_v2_tf1_quant.ts.pt", 224);
  const auto taps = backbone->inspect(224);
  REQUIRE(taps.size() == 19);
  CHECK(taps[0].name == "features.0");
  CHECK(taps[0].shape == std::vector<std::int64_t>{32, 112, 112});
  CHECK(taps[18].shape == std::vector<std::int64_t>{1280, 7, 7});
  CHECK(taps[18].feature_dim == 1280);
  // Every parameter of `features`; with the classifier (1280 x 1001 + 1001) that is the whole model.
  torch::jit::Module module = torch::jit::load(test::models_dir() + "/mobilenet_v2_tf1_quant.ts.pt");
  std::int64_t features = 0, all = 0;
  for (const auto& p : module.attr("features").toModule().parameters()) features += p.numel();
  for (const auto& p : module.parameters()) all += p.numel();
  CHECK(taps[18].parameters == features);
  CHECK(all == 3504872);
  for (std::size_t t = 1; t < taps.size(); ++t) CHECK(taps[t].parameters > taps[t - 1].parameters);
}

TEST_CASE("Bad backbone options name the key and the fix", "[backbone]") {
  Registry registry;
  registry.add_directory(test::plugin_dir());
  Options missing("backbone", "");
  missing.set("file", std::string("/nonexistent/model.ts.pt"), "study.toml:9:1");
  REQUIRE_THROWS_WITH(registry.create<Backbone>("torchscript", missing),
                      Catch::Matchers::Contains("study.toml:9:1") && Catch::Matchers::Contains("does not exist"));
  Options bad_tap("backbone", "");
  bad_tap.set("file", test::models_dir() + "/mobilenet_v1_0.25_128_quant.ts.pt");
  bad_tap.set("taps", Options::List{std::string("features.3"), std::string("layer2.1")}, "study.toml:10:1");
  REQUIRE_THROWS_WITH(registry.create<Backbone>("torchscript", bad_tap),
                      Catch::Matchers::Contains("'layer2.1' is not a child of the container 'features'") &&
                          Catch::Matchers::Contains("features.0 ... features.13"));
  Options not_torchscript("backbone", "");
  not_torchscript.set("file", test::models_dir() + "/mobilenet_v1_0.25_128_quant.state_dict.pt");
  REQUIRE_THROWS_WITH(registry.create<Backbone>("torchscript", not_torchscript),
                      Catch::Matchers::Contains("cannot load") && Catch::Matchers::Contains("as TorchScript"));
}

// ASan's runtime, present only in the sanitizer build (tools/sanitize.sh); the test units are
// built without sanitizers, so the function is looked up rather than included.
extern "C" int __asan_address_is_poisoned(void const volatile* address) __attribute__((weak));

TEST_CASE("Under ASan a freed tensor's storage is poisoned until a tensor of its size reuses it",
          "[backbone][sanitizers]") {
  if (__asan_address_is_poisoned == nullptr) {
    SUCCEED("not the sanitizer build: LibTorch's own allocator serves tensors");
    return;
  }
  // core/runtime/allocator.cpp keeps freed tensor storage for reuse in this build; a read of a freed
  // tensor must still be reported, so what waits for reuse is poisoned, whole.
  const auto bytes = 3 * 1000 * 1000 * sizeof(float);
  auto tensor = std::make_unique<torch::Tensor>(torch::ones({3, 1000, 1000}));
  const auto* data = static_cast<const char*>(tensor->data_ptr());
  CHECK_FALSE(__asan_address_is_poisoned(data));
  tensor.reset();
  CHECK(__asan_address_is_poisoned(data));
  CHECK(__asan_address_is_poisoned(data + bytes / 2));
  CHECK(__asan_address_is_poisoned(data + bytes - 1));
  const auto again = torch::zeros({1000, 3000});  // the same size: the same block, readable again
  CHECK(static_cast<const char*>(again.data_ptr()) == data);
  CHECK_FALSE(__asan_address_is_poisoned(data + bytes - 1));
  CHECK(__asan_address_is_poisoned(data + bytes));  // ASan's redzone still follows the block
  CHECK(again.sum().item<float>() == 0.0f);
}
