// The native backbone's transformers and modern CNNs (ViT, Swin, ConvNeXt, EfficientNet), checked
// against torchvision itself: names and shapes of every parameter, raw outputs at every tap of
// networks it saved (tests/fixtures/backbones/make_modern_fixtures.py), the position embedding
// resampled at another input size, timm's and Hugging Face's key names, and the published MACs.
#include "test_support.hpp"
#include "test_files.hpp"
#include "test_plugins.hpp"

#include <cstdlib>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include <kgain/backbone.hpp>
#include "runtime/allocator.hpp"
#include "config/config.hpp"
#include "plan/registry.hpp"
#include "study/run.hpp"

using namespace kgain;
using namespace kgain::core;
using Catch::Matchers::Contains;

namespace {

std::shared_ptr<Backbone> native(const std::string& architecture,
                                 const std::vector<std::pair<std::string, Options::Value>>& extra = {}) {
  return test::native_backbone(architecture, extra);
}
using test::strings;

// Made by tests/fixtures/backbones/make_modern_fixtures.py (python3-torchvision) once per build tree.
std::string fixture(const std::string& file) {
  static const std::string d = kgain::test::test_output_dir() + "/modern-fixtures";
  static const std::string dir = test::generated_once(d, "modern_shapes.json", [](const std::string& out) {
    return "/usr/bin/python3 " + test::fixtures_dir() + "/backbones/make_modern_fixtures.py " + out + " 2>/dev/null";
  });
  return dir + "/" + file;
}

// A dict saved by torch.save in Python: name -> tensor.
std::map<std::string, at::Tensor> load_dict(const std::string& file) {
  const std::string bytes = test::slurp(file);
  const auto value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  std::map<std::string, at::Tensor> out;
  for (const auto& entry : value.toGenericDict()) out[entry.key().toStringRef()] = entry.value().toTensor();
  return out;
}

std::vector<std::string> tap_list(const std::string& stem) {
  return nlohmann::json::parse(test::slurp(fixture(stem + ".taps.json"))).get<std::vector<std::string>>();
}

float max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<float>(); }

// The pooled feature the backbone should give for a raw tap output of torchvision's.
at::Tensor pool(const at::Tensor& raw, Pooling pooling, bool nhwc) {
  if (raw.dim() == 4) {
    const std::vector<std::int64_t> space = nhwc ? std::vector<std::int64_t>{1, 2} : std::vector<std::int64_t>{2, 3};
    return pooling == Pooling::max ? raw.amax(space) : raw.mean(space);
  }
  const at::Tensor patches = raw.narrow(1, 1, raw.size(1) - 1).mean(1);
  if (pooling == Pooling::cls) return raw.select(1, 0);
  if (pooling == Pooling::mean) return patches;
  return torch::cat({raw.select(1, 0), patches}, 1);
}

// Every tap of `mine` against the reference file's raw outputs, pooled; then the logits.
void check_against(Backbone& mine, const std::string& reference_file, const std::vector<std::string>& taps,
                   Pooling pooling, bool with_logits = true, bool nhwc = false) {
  const auto reference = load_dict(fixture(reference_file));
  const at::Tensor input = reference.at("input");
  const auto network = mine.instantiate(Variant{}, pooling);
  const auto features = network->extract(input);
  REQUIRE(features.size() == taps.size());
  for (std::size_t t = 0; t < taps.size(); ++t) {
    CAPTURE(taps[t]);
    const at::Tensor expected = pool(reference.at("tap:" + taps[t]), pooling, nhwc);
    REQUIRE(features[t].sizes() == expected.sizes());
    CHECK(max_diff(features[t], expected) < 1e-4f);
  }
  if (with_logits) CHECK(max_diff(network->classify(input), reference.at("logits")) < 1e-4f);
}

std::vector<std::pair<std::string, Options::Value>> small_vit(const std::string& weights) {
  return {{"patch_size", std::int64_t{8}},         {"layers", std::int64_t{2}},   {"heads", std::int64_t{2}},
          {"hidden_dim", std::int64_t{32}},        {"mlp_dim", std::int64_t{64}}, {"weights", weights},
          {"taps", strings(tap_list("vit_small"))}};
}

}  // namespace

TEST_CASE("ViT, Swin, ConvNeXt and EfficientNet have torchvision's parameter names, shapes and counts", "[native]") {
  // As kgain itself does at start: the networks' freed parameters (up to 2.5 GB for ViT-H/14)
  // are reused, not served by fresh pages the kernel zeroes (allocator.hpp).
  keep_freed_memory_for_reuse();
  const auto shapes = nlohmann::json::parse(test::slurp(fixture("modern_shapes.json")));
  for (const auto& [architecture, expected] : shapes.items()) {
    CAPTURE(architecture);
    // Parameters up to the last unit (the whole trunk): torchvision's count less the classifier.
    const std::string last = architecture.rfind("vit", 0) == 0    ? "encoder.ln"
                             : architecture.rfind("swin", 0) == 0 ? "norm"
                                                                  : "features";
    const auto info = native(architecture, {{"taps", strings({last})}})->inspect(32);
    CHECK(info.back().parameters + expected["head"].get<std::int64_t>() == expected["parameters"].get<std::int64_t>());
    if (!expected.contains("keys")) continue;  // over 100 M parameters: the count only
    // A state dict of zeros with torchvision's names and shapes loads: the loader checks every
    // key both ways and every shape, and throws naming any difference.
    const std::string file = fixture(architecture + ".zeros.pt");
    test::write_zeros_state_dict(file, expected["keys"]);
    CHECK_NOTHROW(native(architecture, {{"weights", file}}));
    std::filesystem::remove(file);
  }
}

TEST_CASE("timm's ViT-S/16 and ViT-Ti/16 have timm's parameter counts", "[native]") {
  // timm's model cards: vit_small_patch16_224 22,050,664 parameters, vit_tiny_patch16_224
  // 5,717,416, both with a 1,000-class head (width + 1) x 1000 and torchvision's layout.
  struct Case {
    std::string architecture;
    std::int64_t parameters, width;
  };
  const auto c = GENERATE(Case{"vit_s_16", 22050664, 384}, Case{"vit_ti_16", 5717416, 192});
  CAPTURE(c.architecture);
  const auto info = native(c.architecture, {{"taps", strings({"encoder.ln"})}})->inspect(224);
  CHECK(info.back().parameters + (c.width + 1) * 1000 == c.parameters);
  CHECK(info.back().shape == std::vector<std::int64_t>{197, c.width});
}

TEST_CASE("The native ViT equals torchvision's at every block, in every token pooling", "[native]") {
  auto mine = native("vit", small_vit(fixture("vit_small.state_dict.pt")));
  CHECK(mine->native_input_size() == 32);  // the weights' 4 x 4 position grid x patch 8
  const auto pooling = GENERATE(Pooling::cls, Pooling::mean, Pooling::cls_mean);
  check_against(*mine, "vit_small.reference.pt", tap_list("vit_small"), pooling);
  const auto info = mine->inspect(32);
  REQUIRE(info.size() == 4);
  CHECK(info[1].form == TapForm::tokens);
  CHECK(info[1].feature_dim == 32);
  CHECK(info[1].shape == std::vector<std::int64_t>{17, 32});  // class token + 16 patches
  // A feature-map pooling does not fit token taps, and says which do.
  REQUIRE_THROWS_WITH(mine->instantiate(Variant{}, Pooling::avg), Contains("cls") && Contains("token"));
}

TEST_CASE("The ViT's position embedding is resampled as timm does at another input size", "[native]") {
  auto mine = native("vit", small_vit(fixture("vit_small.state_dict.pt")));
  check_against(*mine, "vit_small_48.reference.pt", tap_list("vit_small"), Pooling::cls_mean);
  CHECK(mine->inspect(48)[0].shape == std::vector<std::int64_t>{37, 32});
}

TEST_CASE("ViT weights with timm's and Hugging Face's key names load to the same network", "[native]") {
  auto torchvision_names = native("vit", small_vit(fixture("vit_small.state_dict.pt")));
  auto timm = native("vit", small_vit(fixture("vit_small.timm.pt")));  // detected from the keys
  check_against(*timm, "vit_small.reference.pt", tap_list("vit_small"), Pooling::cls);
  // Hugging Face: q, k, v apart, no classifier (a ViTModel), a pooler the loader drops. Its
  // files' norms use epsilon 1e-12, so give torchvision's 1e-6 to compare with the reference.
  auto options = small_vit(fixture("vit_small.hf.pt"));
  options.push_back({"key_format", std::string("huggingface")});
  options.push_back({"layer_norm_eps", 1e-6});
  auto hf = native("vit", options);
  check_against(*hf, "vit_small.reference.pt", tap_list("vit_small"), Pooling::cls, /*with_logits=*/false);
  CHECK(!hf->instantiate(Variant{}, Pooling::cls)
             ->classify(load_dict(fixture("vit_small.reference.pt")).at("input"))
             .defined());
  // The wrong format names what is missing.
  auto wrong = small_vit(fixture("vit_small.timm.pt"));
  wrong.push_back({"key_format", std::string("torchvision")});
  REQUIRE_THROWS_WITH(native("vit", wrong), Contains("missing keys") && Contains("class_token") &&
                                                Contains("unexpected keys") && Contains("cls_token") &&
                                                Contains("key_format"));
  // timm names for a CNN: refused, naming the option.
  REQUIRE_THROWS_WITH(native("convnext_tiny", {{"weights", fixture("vit_small.timm.pt")}}),
                      Contains("key_format") && Contains("ViT"));
}

TEST_CASE("Native ConvNeXt-T and EfficientNet-B0 equal torchvision's at every block", "[native]") {
  const auto architecture = GENERATE(std::string("convnext_tiny"), std::string("efficientnet_b0"));
  CAPTURE(architecture);
  const auto taps = tap_list(architecture);
  auto mine = native(architecture, {{"weights", fixture(architecture + ".state_dict.pt")}, {"taps", strings(taps)}});
  check_against(*mine, architecture + ".reference.pt", taps, Pooling::avg);
  check_against(*mine, architecture + ".reference.pt", taps, Pooling::max, false);
  REQUIRE_THROWS_WITH(mine->instantiate(Variant{}, Pooling::cls), Contains("feature maps") && Contains("avg"));
}

TEST_CASE("Native Swin-T equals torchvision's at every block, with padded and shifted windows", "[native]") {
  const auto taps = tap_list("swin_t");
  auto mine = native("swin_t", {{"weights", fixture("swin_t.state_dict.pt")}, {"taps", strings(taps)}});
  const auto file = GENERATE(std::string("swin_t.reference.pt"), std::string("swin_t_112.reference.pt"));
  CAPTURE(file);
  check_against(*mine, file, taps, Pooling::avg, true, /*nhwc=*/true);
  const auto info = mine->inspect(64);
  CHECK(info.front().shape == std::vector<std::int64_t>{16, 16, 96});  // channels last, as torchvision's Swin
  CHECK(info.front().feature_dim == 96);
  CHECK(info.front().form == TapForm::feature_map);
}

TEST_CASE("Transformer and modern CNN MACs match the published counts", "[native]") {
  // torchvision's model cards (fvcore's counts: convolutions, linear layers and attention's
  // matrix products): ViT-B/16 17.56 GFLOPS, ViT-B/32 4.41, Swin-T 4.49, ConvNeXt-T 4.46,
  // EfficientNet-B0 0.39.
  struct Case {
    std::string architecture;
    double gmacs;
    std::int64_t head_in;
  };
  const auto c = GENERATE(Case{"vit_b_16", 17.56, 768}, Case{"vit_b_32", 4.41, 768}, Case{"swin_t", 4.49, 768},
                          Case{"convnext_tiny", 4.46, 768}, Case{"efficientnet_b0", 0.39, 1280});
  CAPTURE(c.architecture);
  auto backbone = native(c.architecture);
  const auto info = backbone->inspect(224);
  const double total = static_cast<double>(info.back().macs) + static_cast<double>(c.head_in) * 1000;
  CHECK(std::abs(total / 1e9 - c.gmacs) / c.gmacs < 0.02);
  for (std::size_t t = 1; t < info.size(); ++t) CHECK(info[t].macs > info[t - 1].macs);
  if (c.architecture == "vit_b_16") {
    REQUIRE(info.size() == 12);  // the default taps: every encoder block
    CHECK(info[0].name == "encoder.layers.encoder_layer_0");
    CHECK(info[0].shape == std::vector<std::int64_t>{197, 768});
    // One block: q, k, v and output projections, the MLP, and the two attention products.
    const double block = 197.0 * 768 * 768 * 4 + 197.0 * 768 * 3072 * 2 + 2.0 * 12 * 197 * 197 * 64;
    CHECK(static_cast<double>(info[1].macs - info[0].macs) == block);
  }
}

TEST_CASE(
    "Random ViT weights are deterministic per seed, differ between seeds, and torchvision's zero head gives zero "
    "logits",
    "[native]") {
  auto vit = native("vit", {{"patch_size", std::int64_t{8}},
                            {"layers", std::int64_t{2}},
                            {"heads", std::int64_t{2}},
                            {"hidden_dim", std::int64_t{32}},
                            {"mlp_dim", std::int64_t{64}}});
  CHECK(!vit->has_pretrained_weights());
  const at::Tensor images = torch::randn({2, 3, 32, 32}, at::detail::createCPUGenerator(1));
  const auto a = vit->instantiate(Variant{Variant::Kind::random, 3}, Pooling::cls)->extract(images);
  const auto b = vit->instantiate(Variant{Variant::Kind::random, 3}, Pooling::cls)->extract(images);
  const auto c = vit->instantiate(Variant{Variant::Kind::random, 4}, Pooling::cls)->extract(images);
  for (std::size_t t = 0; t < a.size(); ++t) CHECK(torch::equal(a[t], b[t]));
  CHECK(!torch::equal(a[1], c[1]));
  // torchvision zeroes the class token and the head: every image's class token enters the first
  // block as the same vector (its position embedding), and the logits are 0.
  const auto logits = vit->instantiate(Variant{Variant::Kind::random, 3}, Pooling::cls)->classify(images);
  CHECK(logits.abs().max().item<float>() == 0.0f);
}

TEST_CASE("A ViT study: token pooling end to end, and a map pooling refused before extraction",
          "[native][end_to_end]") {
  namespace fs = std::filesystem;
  const fs::path dir = test::fresh_temp_dir("vit-study");
  const auto config = [&](const std::string& pooling) {
    return "[run]\nthreads = 2\n[dataset]\nplugin = \"folder\"\nroot = \"" + test::data_dir() +
           "/pcam-mini\"\nlimit_per_class = 12\n"
           "[backbone]\nplugin = \"native\"\narchitecture = \"vit\"\npatch_size = 8\nlayers = 2\nheads = 2\nhidden_dim "
           "= 32\nmlp_dim = 64\n"
           "weights = \"" +
           fixture("vit_small.state_dict.pt") + "\"\n[features]\ninput_size = 32\npooling = \"" + pooling +
           "\"\n"
           "[variants]\nrandom_seeds = [0]\n[splits]\nfolds = 2\n[transferability]\nnames = []\ncka = false\nsource = "
           "true\n[analysis]\nbootstrap = 0\n";
  };
  RunOptions o;
  o.out_dir = (dir / "avg").string();
  REQUIRE_THROWS_WITH(
      run_study(parse_config(config("avg"), (dir / "avg.toml").string()), o),
      Contains("avg.toml") && Contains("pooling = \"avg\"") && Contains("token sequence") && Contains("cls_mean"));
  CHECK(!fs::exists(dir / "avg" / "features"));  // nothing was extracted
  o.out_dir = (dir / "cls_mean").string();
  const RunSummary summary = run_study(parse_config(config("cls_mean"), (dir / "cls_mean.toml").string()), o);
  REQUIRE(!summary.gain.empty());
  std::set<std::string> taps;
  for (const auto& g : summary.gain) {
    taps.insert(g.tap);
    CHECK(g.feature_dim == 64);  // class token and patch mean, 32 each
  }
  CHECK(taps == std::set<std::string>{"encoder.layers.encoder_layer_0",
                                      "encoder.layers.encoder_layer_1"});  // the default: every block
  CHECK(summary.source_transferability.size() == 2);  // LEEP and NCE from the ViT's own head, under the token pooling
  fs::remove_all(dir);
}
