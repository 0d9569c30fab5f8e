#include "architectures.hpp"
#include "builder.hpp"

#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace kgain::native {
namespace {

using torch::jit::Module;

// ---- ResNet ----------------------------------------------------------------------------------

Module basic_block(Builder& b, std::int64_t in, std::int64_t planes, std::int64_t stride) {
  Module m = b.make("BasicBlock");
  m.register_module("conv1", b.conv(in, planes, 3, stride));
  m.register_module("bn1", b.batch_norm(planes));
  m.register_module("conv2", b.conv(planes, planes, 3));
  m.register_module("bn2", b.batch_norm(planes));
  const bool downsample = stride != 1 || in != planes;
  if (downsample) m.register_module("downsample", b.sequential({b.conv(in, planes, 1, stride), b.batch_norm(planes)}));
  m.define(std::string("def forward(self, x: Tensor) -> Tensor:\n") +
           "    out = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
           "    out = self.bn2.forward(self.conv2.forward(out))\n" +
           (downsample ? "    x = self.downsample.forward(x)\n" : "") + "    return torch.relu(out + x)\n");
  return m;
}

Module bottleneck(Builder& b, std::int64_t in, std::int64_t planes, std::int64_t stride) {
  Module m = b.make("Bottleneck");
  const std::int64_t out = planes * 4;
  m.register_module("conv1", b.conv(in, planes, 1));
  m.register_module("bn1", b.batch_norm(planes));
  m.register_module("conv2", b.conv(planes, planes, 3, stride));  // stride on the 3x3 (ResNet v1.5, torchvision)
  m.register_module("bn2", b.batch_norm(planes));
  m.register_module("conv3", b.conv(planes, out, 1));
  m.register_module("bn3", b.batch_norm(out));
  const bool downsample = stride != 1 || in != out;
  if (downsample) m.register_module("downsample", b.sequential({b.conv(in, out, 1, stride), b.batch_norm(out)}));
  m.define(std::string("def forward(self, x: Tensor) -> Tensor:\n") +
           "    out = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
           "    out = torch.relu(self.bn2.forward(self.conv2.forward(out)))\n"
           "    out = self.bn3.forward(self.conv3.forward(out))\n" +
           (downsample ? "    x = self.downsample.forward(x)\n" : "") + "    return torch.relu(out + x)\n");
  return m;
}

Architecture resnet(const std::vector<int>& blocks, bool use_bottleneck, std::int64_t classes) {
  Builder b(false, 1e-5);
  Architecture a;
  a.root = b.make("ResNet");
  a.root.register_module("conv1", b.conv(3, 64, 7, 2));
  a.root.register_module("bn1", b.batch_norm(64));
  a.root.register_module("relu", b.function(relu));
  a.root.register_module("maxpool", b.function("torch.max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], False)"));
  a.unit_paths = {"conv1", "bn1", "relu", "maxpool"};
  a.default_taps = {"maxpool"};
  std::int64_t in = 64;
  const std::int64_t expansion = use_bottleneck ? 4 : 1;
  for (int stage = 0; stage < 4; ++stage) {
    const std::int64_t planes = 64 << stage;
    std::vector<Module> layer;
    for (int i = 0; i < blocks[stage]; ++i) {
      const std::int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      layer.push_back(use_bottleneck ? bottleneck(b, in, planes, stride) : basic_block(b, in, planes, stride));
      in = planes * expansion;
      const std::string path = "layer" + std::to_string(stage + 1) + "." + std::to_string(i);
      a.unit_paths.push_back(path);
      a.default_taps.push_back(path);
    }
    a.root.register_module("layer" + std::to_string(stage + 1), b.sequential(layer));
  }
  a.root.register_module("fc", b.linear(in, classes));
  // torchvision: conv Kaiming normal fan-out; fc keeps nn.Linear's default.
  a.conv_weight = trunk::InitRule::kaiming_normal_fan_out;
  a.linear_weight = trunk::InitRule::kaiming_uniform_linear;
  a.linear_bias = trunk::InitRule::uniform_fan_in_bias;
  finish(a, "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n    return self.fc.forward(x)\n");
  return a;
}

// ---- VGG -------------------------------------------------------------------------------------

Architecture vgg(const std::vector<int>& cfg, bool batch_norm, std::int64_t classes) {  // cfg: channels, 0 = max pool
  Builder b(false, 1e-5);
  Architecture a;
  a.root = b.make("VGG");
  std::vector<Module> features;
  std::int64_t in = 3;
  for (int c : cfg) {
    if (c == 0) {
      features.push_back(b.function("torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], False)"));
      continue;
    }
    features.push_back(b.conv(in, c, 3, 1, 1, /*bias=*/true));
    if (batch_norm) features.push_back(b.batch_norm(c));
    features.push_back(b.function(relu));
    a.default_taps.push_back("features." + std::to_string(features.size() - 1));  // after each ReLU
    in = c;
  }
  a.root.register_module("features", b.sequential(features));
  for (std::size_t i = 0; i < features.size(); ++i) a.unit_paths.push_back("features." + std::to_string(i));
  Module classifier = b.make("Classifier");
  classifier.register_module("0", b.linear(512 * 7 * 7, 4096));
  classifier.register_module("3", b.linear(4096, 4096));
  classifier.register_module("6", b.linear(4096, classes));
  classifier.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    x = torch.relu(getattr(self, \"0\").forward(x))\n"
      "    x = torch.relu(getattr(self, \"3\").forward(x))\n"
      "    return getattr(self, \"6\").forward(x)\n");
  a.root.register_module("classifier", classifier);
  // torchvision: conv Kaiming normal fan-out, bias 0; linear N(0, 0.01), bias 0.
  a.conv_weight = trunk::InitRule::kaiming_normal_fan_out;
  a.linear_weight = trunk::InitRule::normal_001;
  a.linear_bias = trunk::InitRule::zeros;
  finish(a, "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [7, 7]), 1)\n    return self.classifier.forward(x)\n");
  return a;
}

// ---- DenseNet --------------------------------------------------------------------------------

Module dense_layer(Builder& b, std::int64_t in, std::int64_t growth, std::int64_t bn_size) {
  Module m = b.make("DenseLayer");
  m.register_module("norm1", b.batch_norm(in));
  m.register_module("conv1", b.conv(in, bn_size * growth, 1));
  m.register_module("norm2", b.batch_norm(bn_size * growth));
  m.register_module("conv2", b.conv(bn_size * growth, growth, 3));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    x = self.conv1.forward(torch.relu(self.norm1.forward(x)))\n"
      "    return self.conv2.forward(torch.relu(self.norm2.forward(x)))\n");
  return m;
}

Architecture densenet(std::int64_t growth, const std::vector<int>& blocks, std::int64_t init_features,
                      std::int64_t classes) {
  Builder b(false, 1e-5);
  Architecture a;
  a.root = b.make("DenseNet");
  std::vector<Module> features{b.conv(3, init_features, 7, 2), b.batch_norm(init_features), b.function(relu),
                               b.function("torch.max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], False)")};
  std::vector<std::string> names{"conv0", "norm0", "relu0", "pool0"};
  a.default_taps = {"features.pool0"};
  std::int64_t c = init_features;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    Module block = b.make("DenseBlock");
    std::string src = "def forward(self, x: Tensor) -> Tensor:\n";
    for (int l = 0; l < blocks[i]; ++l) {
      const std::string name = "denselayer" + std::to_string(l + 1);
      block.register_module(name, dense_layer(b, c + l * growth, growth, 4));
      src +=
          "    x = torch.cat([x, self." + name + ".forward(x)], 1)\n";  // torchvision's order: input, layer 1, 2, ...
    }
    block.define(src + "    return x\n");
    c += blocks[i] * growth;
    features.push_back(block);
    names.push_back("denseblock" + std::to_string(i + 1));
    a.default_taps.push_back("features." + names.back());
    if (i + 1 == blocks.size()) break;
    Module transition = b.make("Transition");
    transition.register_module("norm", b.batch_norm(c));
    transition.register_module("conv", b.conv(c, c / 2, 1));
    transition.define(
        "def forward(self, x: Tensor) -> Tensor:\n"
        "    x = self.conv.forward(torch.relu(self.norm.forward(x)))\n"
        "    return torch.avg_pool2d(x, [2, 2], [2, 2])\n");
    c /= 2;
    features.push_back(transition);
    names.push_back("transition" + std::to_string(i + 1));
    a.default_taps.push_back("features." + names.back());
  }
  features.push_back(b.batch_norm(c));
  names.push_back("norm5");
  a.default_taps.push_back("features.norm5");
  a.root.register_module("features", b.sequential(features, names));
  for (const auto& n : names) a.unit_paths.push_back("features." + n);
  a.root.register_module("classifier", b.linear(c, classes));
  // torchvision: conv Kaiming normal (fan-in), linear weight nn.Linear's default, bias 0.
  a.conv_weight = trunk::InitRule::kaiming_normal_fan_in;
  a.linear_weight = trunk::InitRule::kaiming_uniform_linear;
  a.linear_bias = trunk::InitRule::zeros;
  finish(a,
         "    x = torch.flatten(torch.adaptive_avg_pool2d(torch.relu(x), [1, 1]), 1)\n"
         "    return self.classifier.forward(x)\n");
  return a;
}

// ---- MobileNets ------------------------------------------------------------------------------

Module mobilenet_classifier(Builder& b, std::int64_t in, std::int64_t classes) {
  Module classifier = b.make("Classifier");  // child 0 is a dropout, which has no parameters
  classifier.register_module("1", b.linear(in, classes));
  classifier.define("def forward(self, x: Tensor) -> Tensor:\n    return getattr(self, \"1\").forward(x)\n");
  return classifier;
}

Architecture mobilenet_v2(bool tf_same, bool tf_input, std::int64_t classes) {
  Builder b(tf_same, 1e-5);
  Architecture a;
  a.root = b.make("MobileNetV2");
  std::vector<Module> features{b.conv_bn_act(3, 32, 3, 2, 1, relu6, tf_input)};
  const int settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  std::int64_t in = 32;
  for (const auto& s : settings) {
    for (int i = 0; i < s[2]; ++i) {
      const std::int64_t stride = i == 0 ? s[3] : 1, out = s[1], hidden = in * s[0];
      std::vector<Module> layers;
      if (s[0] != 1) layers.push_back(b.conv_bn_act(in, hidden, 1, 1, 1, relu6));
      layers.push_back(b.conv_bn_act(hidden, hidden, 3, stride, hidden, relu6));
      layers.push_back(b.conv(hidden, out, 1));
      layers.push_back(b.batch_norm(out));
      Module block = b.make("InvertedResidual");
      block.register_module("conv", b.sequential(layers));
      const bool residual = stride == 1 && in == out;
      block.define(std::string("def forward(self, x: Tensor) -> Tensor:\n    return ") +
                   (residual ? "x + self.conv.forward(x)\n" : "self.conv.forward(x)\n"));
      features.push_back(block);
      in = out;
    }
  }
  features.push_back(b.conv_bn_act(in, 1280, 1, 1, 1, relu6));
  a.root.register_module("features", b.sequential(features));
  for (std::size_t i = 0; i < features.size(); ++i) a.unit_paths.push_back("features." + std::to_string(i));
  a.default_taps = a.unit_paths;
  a.root.register_module("classifier", mobilenet_classifier(b, 1280, classes));
  // torchvision: conv Kaiming normal fan-out, bias 0; linear N(0, 0.01), bias 0.
  a.conv_weight = trunk::InitRule::kaiming_normal_fan_out;
  a.linear_weight = trunk::InitRule::normal_001;
  a.linear_bias = trunk::InitRule::zeros;
  if (tf_input) a.non_persistent_buffers = {"features.0.0.in_scale", "features.0.0.in_shift"};
  finish(a, "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n    return self.classifier.forward(x)\n");
  return a;
}

Architecture mobilenet_v1(double width, bool tf_same, bool tf_input, std::int64_t classes) {
  // TensorFlow's eps for MobileNetV1 (the ../shared state dicts fold BN for this eps).
  Builder b(tf_same, 1e-3);
  Architecture a;
  a.root = b.make("MobileNetV1");
  const auto depth = [&](int d) { return std::max<std::int64_t>(static_cast<std::int64_t>(d * width), 8); };
  std::vector<Module> features{b.conv_bn_act(3, depth(32), 3, 2, 1, relu6, tf_input)};
  const int channels[13] = {64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
  const int strides[13] = {1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1};
  std::int64_t in = depth(32);
  for (int i = 0; i < 13; ++i) {
    const std::int64_t out = depth(channels[i]);
    features.push_back(b.sequential(
        {b.conv_bn_act(in, in, 3, strides[i], in, relu6), b.conv_bn_act(in, out, 1, 1, 1, relu6)}, {"dw", "pw"}));
    in = out;
  }
  a.root.register_module("features", b.sequential(features));
  for (std::size_t i = 0; i < features.size(); ++i) a.unit_paths.push_back("features." + std::to_string(i));
  a.default_taps = a.unit_paths;
  a.root.register_module("classifier", mobilenet_classifier(b, in, classes));
  // Not in torchvision: MobileNetV2's rules.
  a.conv_weight = trunk::InitRule::kaiming_normal_fan_out;
  a.linear_weight = trunk::InitRule::normal_001;
  a.linear_bias = trunk::InitRule::zeros;
  a.native_input_size = width <= 0.25 ? 128 : width <= 0.5 ? 160 : width <= 0.75 ? 192 : 224;
  if (tf_input) a.non_persistent_buffers = {"features.0.0.in_scale", "features.0.0.in_shift"};
  finish(a, "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n    return self.classifier.forward(x)\n");
  return a;
}

const std::vector<int> vgg11{64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
const std::vector<int> vgg13{64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
const std::vector<int> vgg16{64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
const std::vector<int> vgg19{64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                             512, 512, 512, 512, 0,   512, 512, 512, 512, 0};

// torchvision's CNNs of 2015-2018, each registered by name (architectures.hpp).
const ArchitectureRegistrations registered KGAIN_NATIVE_REGISTRATIONS{[] {
  register_architecture("resnet18", "ResNet", [](const auto& o) { return resnet({2, 2, 2, 2}, false, o.num_classes); });
  register_architecture("resnet34", "ResNet", [](const auto& o) { return resnet({3, 4, 6, 3}, false, o.num_classes); });
  register_architecture("resnet50", "ResNet", [](const auto& o) { return resnet({3, 4, 6, 3}, true, o.num_classes); });
  register_architecture("resnet101", "ResNet", [](const auto& o) {
    return resnet({3, 4, 23, 3}, true, o.num_classes);
  });
  register_architecture("resnet152", "ResNet", [](const auto& o) {
    return resnet({3, 8, 36, 3}, true, o.num_classes);
  });
  const std::pair<const char*, const std::vector<int>*> vggs[]{
      {"vgg11", &vgg11}, {"vgg13", &vgg13}, {"vgg16", &vgg16}, {"vgg19", &vgg19}};
  for (const auto& [name, layout] : vggs) {
    register_architecture(name, "VGG", [layout = layout](const auto& o) { return vgg(*layout, false, o.num_classes); });
    register_architecture(std::string(name) + "_bn", "VGG",
                          [layout = layout](const auto& o) { return vgg(*layout, true, o.num_classes); });
  }
  register_architecture("densenet121", "DenseNet", [](const auto& o) {
    return densenet(32, {6, 12, 24, 16}, 64, o.num_classes);
  });
  register_architecture("densenet161", "DenseNet", [](const auto& o) {
    return densenet(48, {6, 12, 36, 24}, 96, o.num_classes);
  });
  register_architecture("densenet169", "DenseNet", [](const auto& o) {
    return densenet(32, {6, 12, 32, 32}, 64, o.num_classes);
  });
  register_architecture("densenet201", "DenseNet", [](const auto& o) {
    return densenet(32, {6, 12, 48, 32}, 64, o.num_classes);
  });
  register_architecture("mobilenet_v2", "MobileNet",
                        [](const auto& o) { return mobilenet_v2(o.tf_same_padding, o.tf_input_range, o.num_classes); });
  register_architecture("mobilenet_v1", "MobileNet", [](const auto& o) {
    return mobilenet_v1(o.width, o.tf_same_padding, o.tf_input_range, o.num_classes);
  });
}};

struct Registration {
  std::string family;
  ArchitectureBuilder build;
};
std::map<std::string, Registration>& registrations() {
  static std::map<std::string, Registration> by_name;  // filled while the library loads
  return by_name;
}

}  // namespace

void register_architecture(const std::string& name, const std::string& family, ArchitectureBuilder build) {
  if (!registrations().emplace(name, Registration{family, std::move(build)}).second)
    throw std::logic_error("native architecture '" + name + "' is registered twice");
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const auto& [name, registration] : registrations()) names.push_back(name);
  return names;
}

std::vector<std::string> architecture_families() {
  std::set<std::string> families;
  for (const auto& [name, registration] : registrations()) families.insert(registration.family);
  return {families.begin(), families.end()};
}

Architecture build_architecture(const ArchitectureOptions& o) {
  const auto& n = o.name;
  const bool mobilenet = n == "mobilenet_v1" || n == "mobilenet_v2";
  if (!mobilenet && (o.tf_same_padding || o.tf_input_range))
    throw std::invalid_argument("TensorFlow padding and input range are options of the MobileNets only");
  if (n != "mobilenet_v1" && o.width != 1.0)
    throw std::invalid_argument("a width multiplier is an option of mobilenet_v1 only");
  if (o.width <= 0 || o.width > 4) throw std::invalid_argument("width must lie in (0, 4]");
  if (o.num_classes <= 0) throw std::invalid_argument("num_classes must be positive");
  if (n != "vit" && (o.vit_patch || o.vit_layers || o.vit_heads || o.vit_hidden || o.vit_mlp))
    throw std::invalid_argument(
        "patch_size, layers, heads, hidden_dim and mlp_dim describe architecture = \"vit\" only");
  const auto found = registrations().find(n);
  if (found != registrations().end()) return found->second.build(o);
  std::string names;
  for (const auto& name : architecture_names()) names += (names.empty() ? "" : ", ") + name;
  throw std::invalid_argument("unknown architecture '" + n + "'; known: " + names);
}

LeafKind leaf_kind(const torch::jit::Module& module) {
  const std::string name = module.type()->name()->name();
  if (name.rfind("Conv_", 0) == 0) return LeafKind::conv;
  if (name.rfind("BatchNorm_", 0) == 0) return LeafKind::batch_norm;
  if (name.rfind("Linear_", 0) == 0) return LeafKind::linear;
  return LeafKind::other;
}

}  // namespace kgain::native
