// ConvNeXt (tiny, small, base, large) and EfficientNet (B0-B7) with torchvision's names and
// initialization.
#include <cmath>
#include <map>
#include <stdexcept>

#include "architectures.hpp"
#include "builder.hpp"

namespace kgain::native {
namespace {

// ---- ConvNeXt --------------------------------------------------------------------------------

struct ConvNextShape {
  std::vector<std::int64_t> channels;  // per stage
  std::vector<int> blocks;             // per stage
};

const std::map<std::string, ConvNextShape>& named_convnexts() {
  static const std::map<std::string, ConvNextShape> shapes{{"convnext_tiny", {{96, 192, 384, 768}, {3, 3, 9, 3}}},
                                                           {"convnext_small", {{96, 192, 384, 768}, {3, 3, 27, 3}}},
                                                           {"convnext_base", {{128, 256, 512, 1024}, {3, 3, 27, 3}}},
                                                           {"convnext_large", {{192, 384, 768, 1536}, {3, 3, 27, 3}}}};
  return shapes;
}

// CNBlock: block.0 depthwise 7x7, block.2 LayerNorm (channels last), block.3 / block.5 linear,
// layer_scale [dim, 1, 1] (1e-6 at initialization).
Module convnext_block(Builder& b, std::int64_t dim) {
  Module block = b.make("CNBlockLayers");
  block.register_module("0", b.conv(dim, dim, 7, 1, dim, /*bias=*/true, false, 3));
  block.register_module("2", b.layer_norm(dim, 1e-6));
  block.register_module("3", b.linear(dim, 4 * dim));
  block.register_module("5", b.linear(4 * dim, dim));
  block.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    x = getattr(self, \"0\").forward(x).permute([0, 2, 3, 1])\n"
      "    x = getattr(self, \"3\").forward(getattr(self, \"2\").forward(x))\n"
      "    x = getattr(self, \"5\").forward(torch.gelu(x))\n"
      "    return x.permute([0, 3, 1, 2])\n");
  Module m = b.make("CNBlock");
  m.register_module("block", block);
  m.register_parameter("layer_scale", torch::full({dim, 1, 1}, 1e-6), false);
  m.define("def forward(self, x: Tensor) -> Tensor:\n    return self.layer_scale * self.block.forward(x) + x\n");
  return m;
}

// torchvision: every conv and linear weight trunc_normal(std 0.02), bias 0; norms 1 / 0;
// layer scale 1e-6.
void initialise_convnext(Module& root, at::Generator& g) {
  for (const auto& p : root.named_parameters(true)) {
    const std::string leaf = p.name.substr(p.name.rfind('.') + 1);
    if (leaf == "layer_scale")
      init::constant(p.value, 1e-6);
    else if (leaf == "weight" && p.value.dim() >= 2)
      init::trunc_normal(p.value, 0.02, g);
    else
      init::constant(p.value, leaf == "weight" ? 1.0 : 0.0);
  }
}

Architecture convnext(const ConvNextShape& s, std::int64_t classes) {
  Builder b(false, 1e-5);
  Architecture a;
  a.root = b.make("ConvNeXt");
  std::vector<Module> features{
      b.sequential({b.conv(3, s.channels[0], 4, 4, 1, true, false, 0), b.layer_norm(s.channels[0], 1e-6, true)})};
  a.unit_paths = {"features.0"};
  a.default_taps = {"features.0"};
  for (std::size_t stage = 0; stage < s.channels.size(); ++stage) {
    std::vector<Module> blocks;
    for (int i = 0; i < s.blocks[stage]; ++i) {
      blocks.push_back(convnext_block(b, s.channels[stage]));
      a.unit_paths.push_back("features." + std::to_string(features.size()) + "." + std::to_string(i));
      a.default_taps.push_back(a.unit_paths.back());
    }
    features.push_back(b.sequential(blocks));
    if (stage + 1 == s.channels.size()) break;
    features.push_back(b.sequential({b.layer_norm(s.channels[stage], 1e-6, true),
                                     b.conv(s.channels[stage], s.channels[stage + 1], 2, 2, 1, true, false, 0)}));
    a.unit_paths.push_back("features." + std::to_string(features.size() - 1));
  }
  a.root.register_module("features", b.sequential(features));
  const std::int64_t last = s.channels.back();
  Module classifier = b.make("Classifier");  // 0 LayerNorm2d, 1 flatten, 2 linear
  classifier.register_module("0", b.layer_norm(last, 1e-6, true));
  classifier.register_module("2", b.linear(last, classes));
  classifier.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    return getattr(self, \"2\").forward(torch.flatten(getattr(self, \"0\").forward(x), 1))\n");
  a.root.register_module("classifier", classifier);
  a.initialise = initialise_convnext;
  a.optimize_by_default = false;
  finish(a, "    return self.classifier.forward(torch.adaptive_avg_pool2d(x, [1, 1]))\n");
  return a;
}

// ---- EfficientNet ----------------------------------------------------------------------------

struct EfficientNetShape {
  double width, depth, bn_eps;
  std::int64_t input_size;  // torchvision's evaluation crop
};

const std::map<std::string, EfficientNetShape>& named_efficientnets() {
  static const std::map<std::string, EfficientNetShape> shapes{
      {"efficientnet_b0", {1.0, 1.0, 1e-5, 224}}, {"efficientnet_b1", {1.0, 1.1, 1e-5, 240}},
      {"efficientnet_b2", {1.1, 1.2, 1e-5, 288}}, {"efficientnet_b3", {1.2, 1.4, 1e-5, 300}},
      {"efficientnet_b4", {1.4, 1.8, 1e-5, 380}}, {"efficientnet_b5", {1.6, 2.2, 1e-3, 456}},
      {"efficientnet_b6", {1.8, 2.6, 1e-3, 528}}, {"efficientnet_b7", {2.0, 3.1, 1e-3, 600}}};
  return shapes;
}

// torchvision's _make_divisible(v, 8).
std::int64_t make_divisible(double v) {
  std::int64_t out = std::max<std::int64_t>(8, static_cast<std::int64_t>(v + 4) / 8 * 8);
  if (static_cast<double>(out) < 0.9 * v) out += 8;
  return out;
}

// SqueezeExcitation: avgpool, fc1 (1x1 conv), SiLU, fc2, sigmoid, times the input.
Module squeeze_excitation(Builder& b, std::int64_t channels, std::int64_t squeeze) {
  Module m = b.make("SqueezeExcitation");
  m.register_module("fc1", b.conv(channels, squeeze, 1, 1, 1, true));
  m.register_module("fc2", b.conv(squeeze, channels, 1, 1, 1, true));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    scale = self.fc2.forward(torch.silu(self.fc1.forward(torch.adaptive_avg_pool2d(x, [1, 1]))))\n"
      "    return torch.sigmoid(scale) * x\n");
  return m;
}

Module mbconv(Builder& b, std::int64_t in, std::int64_t out, std::int64_t expand, std::int64_t kernel,
              std::int64_t stride) {
  const std::int64_t expanded = make_divisible(static_cast<double>(in * expand));
  std::vector<Module> layers;
  if (expanded != in) layers.push_back(b.conv_bn_act(in, expanded, 1, 1, 1, silu));
  layers.push_back(b.conv_bn_act(expanded, expanded, kernel, stride, expanded, silu));
  layers.push_back(squeeze_excitation(b, expanded, std::max<std::int64_t>(1, in / 4)));
  layers.push_back(b.sequential({b.conv(expanded, out, 1), b.batch_norm(out)}));
  Module m = b.make("MBConv");
  m.register_module("block", b.sequential(layers));
  const bool residual = stride == 1 && in == out;
  m.define(std::string("def forward(self, x: Tensor) -> Tensor:\n    return ") +
           (residual ? "self.block.forward(x) + x\n" : "self.block.forward(x)\n"));
  return m;
}

// torchvision: conv Kaiming normal fan-out, bias 0; batch norm 1 / 0; linear U(+-1/sqrt(out)), bias 0.
void initialise_efficientnet(Module& root, at::Generator& g) {
  for (const auto& p : root.named_parameters(true)) {
    const std::string leaf = p.name.substr(p.name.rfind('.') + 1);
    if (leaf == "weight" && p.value.dim() == 4)
      trunk::draw(p.value, trunk::InitRule::kaiming_normal_fan_out, p.value, g);
    else if (leaf == "weight" && p.value.dim() == 2) {
      torch::NoGradGuard no_grad;
      const double range = 1.0 / std::sqrt(static_cast<double>(p.value.size(0)));
      p.value.uniform_(-range, range, g);
    } else
      init::constant(p.value, leaf == "weight" ? 1.0 : 0.0);
  }
  trunk::reset_batch_norm_buffers(root);
}

Architecture efficientnet(const EfficientNetShape& s, std::int64_t classes) {
  Builder b(false, s.bn_eps);
  Architecture a;
  a.root = b.make("EfficientNet");
  // expand ratio, kernel, stride, in, out, layers (torchvision's _efficientnet_conf for B0-B7)
  const int settings[7][6] = {{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
                              {6, 3, 2, 40, 80, 3},  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
                              {6, 3, 1, 192, 320, 1}};
  const auto channels = [&](int c) { return make_divisible(c * s.width); };
  std::vector<Module> features{b.conv_bn_act(3, channels(32), 3, 2, 1, silu)};
  a.unit_paths = {"features.0"};
  for (const auto& c : settings) {
    std::vector<Module> stage;
    const int layers = static_cast<int>(std::ceil(c[5] * s.depth));
    for (int i = 0; i < layers; ++i) {
      stage.push_back(
          mbconv(b, i == 0 ? channels(c[3]) : channels(c[4]), channels(c[4]), c[0], c[1], i == 0 ? c[2] : 1));
      a.unit_paths.push_back("features." + std::to_string(features.size()) + "." + std::to_string(i));
    }
    features.push_back(b.sequential(stage));
  }
  const std::int64_t last_in = channels(320), last_out = 4 * last_in;
  features.push_back(b.conv_bn_act(last_in, last_out, 1, 1, 1, silu));
  a.unit_paths.push_back("features." + std::to_string(features.size() - 1));
  a.default_taps = a.unit_paths;
  a.root.register_module("features", b.sequential(features));
  Module classifier = b.make("Classifier");  // 0 dropout, 1 linear
  classifier.register_module("1", b.linear(last_out, classes));
  classifier.define("def forward(self, x: Tensor) -> Tensor:\n    return getattr(self, \"1\").forward(x)\n");
  a.root.register_module("classifier", classifier);
  a.native_input_size = s.input_size;
  a.initialise = initialise_efficientnet;
  finish(a, "    return self.classifier.forward(torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1))\n");
  return a;
}

// Each ConvNeXt and EfficientNet, registered by name (architectures.hpp).
const ArchitectureRegistrations registered KGAIN_NATIVE_REGISTRATIONS{[] {
  for (const auto& [name, shape] : named_convnexts())
    register_architecture(name, "ConvNeXt",
                          [shape = shape](const ArchitectureOptions& o) { return convnext(shape, o.num_classes); });
  for (const auto& [name, shape] : named_efficientnets())
    register_architecture(name, "EfficientNet",
                          [shape = shape](const ArchitectureOptions& o) { return efficientnet(shape, o.num_classes); });
}};

}  // namespace

}  // namespace kgain::native
