// The torchvision CNN families, built in C++ as TorchScript modules with torchvision's names.
//
// Each network is a tree of small TorchScript modules (convolution, batch norm, linear, blocks)
// whose module paths and parameter names are torchvision's, so `model.state_dict()` files load
// by key; being TorchScript, the trunk can be frozen and optimized for inference like any
// scripted model. MobileNetV1 (not in torchvision) follows the layout of the TensorFlow
// conversions in ../shared/models: features.0 = stem, features.i.{dw,pw} = blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <kgain/torchscript_trunk.hpp>

namespace kgain::native {

struct ArchitectureOptions {
  std::string name;            // e.g. "resnet50"; see architecture_names()
  double width = 1.0;          // MobileNetV1 width multiplier
  bool tf_same_padding = false;  // MobileNets: TensorFlow 'SAME' padding (asymmetric at stride 2)
  bool tf_input_range = false;   // MobileNets: the stem maps ImageNet-normalized input to [-1, 1]
  std::int64_t num_classes = 1000;
};

struct Architecture {
  torch::jit::Module root;               // forward: normalized images -> logits
  std::vector<std::string> unit_paths;   // the trunk, in execution order (module paths)
  std::vector<torch::jit::Module> units; // the modules at unit_paths
  std::vector<std::string> default_taps; // the stage / block boundaries a study probes
  std::int64_t native_input_size = 224;
  // The architecture's own random initialization (torchvision's `_init_weights` / reset rules).
  trunk::InitRule conv_weight = trunk::InitRule::kaiming_normal_fan_out;
  trunk::InitRule linear_weight = trunk::InitRule::kaiming_uniform_linear;
  trunk::InitRule linear_bias = trunk::InitRule::uniform_fan_in_bias;
  // Buffers that are part of the architecture, not of a state dict (fixed input scaling).
  std::vector<std::string> non_persistent_buffers;
};

std::vector<std::string> architecture_names();
// Throws std::invalid_argument for an unknown name or bad option.
Architecture build_architecture(const ArchitectureOptions& options);

// Leaf kinds, from the module's type name (every module built here has one of these prefixes).
enum class LeafKind { conv, batch_norm, linear, other };
LeafKind leaf_kind(const torch::jit::Module& module);

}  // namespace kgain::native
