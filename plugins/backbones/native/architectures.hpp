// The torchvision families, built in C++ as TorchScript modules with torchvision's names: the
// CNNs of 2015-2018 (architectures.cpp), ConvNeXt and EfficientNet (modern_cnns.cpp), ViT and
// Swin (transformers.cpp).
//
// Each network is a tree of small TorchScript modules (convolution, batch norm, linear, blocks)
// whose module paths and parameter names are torchvision's, so `model.state_dict()` files load
// by key; being TorchScript, the trunk can be frozen and optimized for inference like any
// scripted model. MobileNetV1 (not in torchvision) follows the layout of the TensorFlow
// conversions in ../shared/models: features.0 = stem, features.i.{dw,pw} = blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "torchscript_trunk.hpp"

namespace kgain::native {

struct ArchitectureOptions {
  std::string name;              // e.g. "resnet50"; see architecture_names()
  double width = 1.0;            // MobileNetV1 width multiplier
  bool tf_same_padding = false;  // MobileNets: TensorFlow 'SAME' padding (asymmetric at stride 2)
  bool tf_input_range = false;   // MobileNets: the stem maps ImageNet-normalized input to [-1, 1]
  std::int64_t num_classes = 1000;
  // Vision transformers ("vit" names them all; the named ones fill them in): patch side, blocks,
  // heads, token width, MLP width; `vit_grid`: the position embedding's grid side (native input
  // size / patch size), taken from the weights file when it has one.
  std::int64_t vit_patch = 0, vit_layers = 0, vit_heads = 0, vit_hidden = 0, vit_mlp = 0, vit_grid = 0;
  double layer_norm_eps = 1e-6;  // ViT's (torchvision, timm); Hugging Face's ViTs use 1e-12
};

struct Architecture {
  torch::jit::Module root;                // forward: normalized images -> logits
  std::vector<std::string> unit_paths;    // the trunk, in execution order (module paths)
  std::vector<torch::jit::Module> units;  // the modules at unit_paths
  std::vector<std::string> default_taps;  // the stage / block boundaries a study probes
  std::int64_t native_input_size = 224;
  // The architecture's own random initialization (torchvision's `_init_weights` / reset rules).
  trunk::InitRule conv_weight = trunk::InitRule::kaiming_normal_fan_out;
  trunk::InitRule linear_weight = trunk::InitRule::kaiming_uniform_linear;
  trunk::InitRule linear_bias = trunk::InitRule::uniform_fan_in_bias;
  // Buffers that are part of the architecture, not of a state dict (fixed input scaling).
  std::vector<std::string> non_persistent_buffers;
  // How each unit's output is laid out (one per unit_paths entry).
  std::vector<trunk::TapLayout> unit_layouts;
  // Parameters whose state-dict key is not their module path (ViT's class token and position
  // embedding live in kgain's embedding unit): module path -> torchvision key.
  std::map<std::string, std::string> state_dict_keys;
  // When set, a random variant is drawn by this (the architecture's own rules, by parameter)
  // instead of the conv / batch norm / linear rules above.
  std::function<void(torch::jit::Module& root, at::Generator& generator)> initialise;
  // The family, for key maps: "vit", "swin", or "" (the CNNs).
  std::string family;
  // The default of the backbone's `optimize`: freeze + optimize_for_inference measured slower, and
  // with a higher peak, than the plain graph for the transformers and ConvNeXt (docs/performance.md,
  // "Backbone inference").
  bool optimize_by_default = true;
};

// Each architecture registers itself where it is built, one line per name (as timm's
// @register_model does): the plugin's names, its "known:" list and its summary in `kgain list`
// come from these registrations alone. `family` is the name a user knows ("ResNet", "ViT").
// Each file registers its names in one `ArchitectureRegistrations` object, which GCC's
// init_priority runs before the library's other initialisers (the plugin's summary, built while
// the library loads, needs every family).
using ArchitectureBuilder = std::function<Architecture(const ArchitectureOptions&)>;
void register_architecture(const std::string& name, const std::string& family, ArchitectureBuilder build);
struct ArchitectureRegistrations {
  explicit ArchitectureRegistrations(void (*register_names)()) { register_names(); }
};
#define KGAIN_NATIVE_REGISTRATIONS __attribute__((init_priority(1000)))
std::vector<std::string> architecture_names();     // every registered name, sorted
std::vector<std::string> architecture_families();  // sorted, each once
// Throws std::invalid_argument for an unknown name or bad option.
Architecture build_architecture(const ArchitectureOptions& options);

// Leaf kinds, from the module's type name (every module built here has one of these prefixes).
enum class LeafKind { conv, batch_norm, linear, other };
LeafKind leaf_kind(const torch::jit::Module& module);

}  // namespace kgain::native
