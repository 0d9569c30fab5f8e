// Tapping a network that runs as a chain of TorchScript modules (its "trunk units").
//
// Both built-in backbones (`torchscript`, a file from torch.jit.save, and `native`, the
// torchvision architectures built in C++) describe a network as units that run one after
// another: the children of a `features` container, or ResNet's conv1, bn1, relu, maxpool,
// layer1.0, ... A tap is the output of one unit. This header holds what such backbones share:
//   - the extraction module: one TorchScript module that runs the units in order and pools every
//     tap as it is produced (all taps for the price of one forward pass), frozen and optimized
//     for inference;
//   - per-tap complexity from the real modules: output shape, parameters, and
//     multiply-accumulates counted on the frozen graph of each unit run on a real input;
//   - the random re-initialisation rules shared by both (see `InitRule`).
// Header-only and private to the bundled backbones (plugins/backbones/common, not installed): it includes
// LibTorch's internal torch/csrc/jit headers, which are no stable interface for plugin authors.
// An out-of-tree backbone needs only kgain/backbone.hpp and kgain/pooling.hpp
// (examples/tiny_backbone). The core never includes it.
// Threads: the helpers keep no global state; a Network they build is used from one thread at a
// time, as Backbone's rules say.
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>

#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "kgain/backbone.hpp"
#include "kgain/util/file_hash.hpp"
#include "kgain/log.hpp"

namespace kgain::trunk {

// The submodule at a dotted module path ("features.3", "layer2.1"); "" is the root. Throws
// std::runtime_error naming the missing part.
inline torch::jit::Module module_at(const torch::jit::Module& root, const std::string& path) {
  torch::jit::Module m = root;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    auto child = m.attr(part, c10::IValue());
    if (!child.isModule()) throw std::runtime_error("no module '" + part + "' in '" + path + "'");
    m = child.toModule();
  }
  return m;
}

// How a unit's output is laid out, which decides how its tap is pooled.
enum class TapLayout {
  nchw,    // a feature map [n, c, h, w] (CNNs)
  nhwc,    // a feature map [n, h, w, c] (Swin's stages)
  tokens,  // a token sequence [n, t, d], class token first (ViT)
  vector,  // [n, d], taken as it is
};

inline TapForm form_of(TapLayout layout) {
  return layout == TapLayout::tokens   ? TapForm::tokens
         : layout == TapLayout::vector ? TapForm::vector
                                       : TapForm::feature_map;
}

// The layout of an activation of rank `rank` (batch included) in a network of plain CNN units:
// 4 a map, 2 a vector. Throws std::invalid_argument for any other rank.
inline TapLayout layout_of_rank(std::size_t rank, const std::string& tap) {
  if (rank == 4) return TapLayout::nchw;
  if (rank == 2) return TapLayout::vector;
  throw std::invalid_argument("tap '" + tap + "' produces a rank-" + std::to_string(rank) +
                              " activation; only feature maps [n, c, h, w] and vectors [n, d] can be tapped here");
}

// TorchScript for pooling x; throws std::invalid_argument when `pooling` does not fit `layout`.
inline std::string pooling_expression(Pooling pooling, TapLayout layout) {
  if (layout == TapLayout::vector) return "x";
  if (!pooling_fits(pooling, form_of(layout)))
    throw std::invalid_argument(
        layout == TapLayout::tokens
            ? "the taps are token sequences (a transformer): use [features] pooling = \"cls\", \"mean\" or \"cls_mean\""
            : "the taps are feature maps: use [features] pooling = \"avg\", \"max\" or \"avgmax\"");
  const std::string dims = layout == TapLayout::nchw ? "[2, 3]" : "[1, 2]";
  const std::string patches = "torch.mean(x.narrow(1, 1, x.size(1) - 1), [1])";  // every token but the class token
  switch (pooling) {
    case Pooling::avg: return "torch.mean(x, " + dims + ")";
    case Pooling::max: return "torch.amax(x, " + dims + ")";
    case Pooling::avgmax: return "torch.cat([torch.mean(x, " + dims + "), torch.amax(x, " + dims + ")], 1)";
    case Pooling::cls: return "x.select(1, 0)";
    case Pooling::mean: return patches;
    case Pooling::cls_mean: return "torch.cat([x.select(1, 0), " + patches + "], 1)";
  }
  return "";
}

// The module that runs units[0 .. tap_units.back()] in order and returns, in tap order, the
// pooled output of every unit listed in `tap_units` (increasing indices), each by its layout
// (`tap_layouts[i]` for tap i).
// `optimize`: freeze (weights become constants, conv + batch norm folded) and run
// optimize_for_inference (oneDNN convolutions, fused activations); features stay equal to the
// plain module's within float rounding, which the tests check.
inline torch::jit::Module tap_extractor(const std::vector<torch::jit::Module>& units,
                                        const std::vector<std::size_t>& tap_units,
                                        const std::vector<TapLayout>& tap_layouts, Pooling pooling, bool optimize) {
  torch::jit::Module taps(c10::QualifiedName("__torch__.kgain.TapExtractor"));
  taps.register_attribute("training", c10::BoolType::get(), false);
  std::ostringstream src;
  src << "def forward(self, x: Tensor) -> List[Tensor]:\n    out: List[Tensor] = []\n";
  std::size_t next_tap = 0;
  for (std::size_t i = 0; i <= tap_units.back(); ++i) {
    taps.register_module("unit" + std::to_string(i), units[i]);
    src << "    x = self.unit" << i << ".forward(x)\n";
    if (i != tap_units[next_tap]) continue;
    src << "    out.append(" << pooling_expression(pooling, tap_layouts[next_tap]) << ")\n";
    ++next_tap;
  }
  src << "    return out\n";
  taps.define(src.str());
  taps.eval();
  if (optimize) {
    taps = torch::jit::freeze(taps);
    taps = torch::jit::optimize_for_inference(taps);
  }
  return taps;
}

// A network for the core: `full` classifies (when `has_classifier`), `taps` is a tap_extractor.
// `channels_last`: batches enter the extractor in channels-last layout (NHWC), which some
// oneDNN convolutions run faster; the features are the same.
// `reference`: the plain (unoptimized) extractor when `taps` is optimized. The optimized graph
// must give the plain graph's features, but LibTorch 1.13's bundled oneDNN computes some small
// convolutions wrongly on some AVX-512 processors (seen on an AMD EPYC: MobileNetV1 0.25 off by
// 0.77 at its first tap). So the first batch runs through both, and if any tap differs by more
// than float rounding the plain graph is used from then on, with a warning: slower, never wrong.
class TrunkNetwork : public Network {
 public:
  TrunkNetwork(torch::jit::Module full, torch::jit::Module taps, bool has_classifier = true, bool channels_last = false,
               c10::optional<torch::jit::Module> reference = c10::nullopt)
      : full_(std::move(full)),
        taps_(std::move(taps)),
        has_classifier_(has_classifier),
        channels_last_(channels_last),
        reference_(std::move(reference)) {}
  std::vector<at::Tensor> extract(const at::Tensor& images) override {
    c10::InferenceMode guard;
    std::vector<at::Tensor> features = run(taps_, images);
    if (reference_) {
      const std::vector<at::Tensor> plain = run(*reference_, images);
      bool same = plain.size() == features.size();
      for (std::size_t t = 0; same && t < plain.size(); ++t) {
        const double scale = std::max(1.0, plain[t].abs().max().item<double>());
        same = plain[t].sizes() == features[t].sizes() &&
               (plain[t] - features[t]).abs().max().item<double>() <= 1e-3 * scale;
      }
      if (!same) {
        kgain::log(kgain::LogLevel::warning, "backbone",
                   "the optimized network (oneDNN) disagrees with the plain one on this processor; using the plain "
                   "network (correct, slower)");
        taps_ = *reference_;
        features = plain;
      }
      reference_ = c10::nullopt;  // checked once per network
    }
    return features;
  }
  at::Tensor classify(const at::Tensor& images) override {
    if (!has_classifier_) return {};
    c10::InferenceMode guard;
    return full_.forward({images}).toTensor();
  }

 private:
  std::vector<at::Tensor> run(torch::jit::Module& taps, const at::Tensor& images) {
    auto out =
        taps.forward({channels_last_ ? images.contiguous(at::MemoryFormat::ChannelsLast) : images}).toTensorList();
    std::vector<at::Tensor> features;
    features.reserve(out.size());
    for (const at::Tensor& t : out) features.push_back(t.to(torch::kFloat32).contiguous());
    return features;
  }

  torch::jit::Module full_;
  torch::jit::Module taps_;
  bool has_classifier_;
  bool channels_last_;
  c10::optional<torch::jit::Module> reference_;
};

// The network for tap_extractor(units, ...): optimized (freeze + optimize_for_inference) and
// checked against the plain extractor on its first batch when `optimize`, else plain.
inline std::unique_ptr<Network> trunk_network(torch::jit::Module full, const std::vector<torch::jit::Module>& units,
                                              const std::vector<std::size_t>& tap_units,
                                              const std::vector<TapLayout>& tap_layouts, Pooling pooling, bool optimize,
                                              bool has_classifier = true, bool channels_last = false) {
  torch::jit::Module plain = tap_extractor(units, tap_units, tap_layouts, pooling, /*optimize=*/false);
  if (!optimize)
    return std::make_unique<TrunkNetwork>(std::move(full), std::move(plain), has_classifier, channels_last);
  torch::jit::Module frozen = torch::jit::freeze(plain);  // freeze works on a clone: `plain` stays as it is
  torch::jit::Module optimized = torch::jit::optimize_for_inference(frozen);
  return std::make_unique<TrunkNetwork>(std::move(full), std::move(optimized), has_classifier, channels_last,
                                        std::move(plain));
}

// Multiply-accumulates per image of one unit on `x` (a batch of one image), counted on the
// unit's frozen graph: every convolution and linear layer contributes
//   output elements x (weight elements / output channels),
// i.e. C_out H_out W_out (C_in / groups) k_h k_w for a convolution and out x in for a linear
// layer, and every matrix product of two activations (attention's q k^T and attention x v,
// written with torch.matmul) output elements x the inner dimension; the output sizes are taken
// from running the graph. Other operations (norms, activations, softmax, pooling, additions)
// are not counted, as in the published GMAC figures (fvcore's rules). Returns -1 when a weight
// is not a constant of the frozen graph, or a counted layer sits in a sub-block (an `if`):
// then the count would be a guess.
inline std::int64_t count_macs(const torch::jit::Module& unit, const at::Tensor& x) {
  torch::jit::Module frozen = torch::jit::freeze(unit, c10::nullopt, /*optimize_numerics=*/false);
  auto graph = frozen.get_method("forward").graph()->copy();
  const auto is_layer = [](c10::Symbol kind) {
    return kind == c10::aten::conv2d || kind == c10::aten::_convolution || kind == c10::aten::conv1d ||
           kind == c10::aten::conv3d || kind == c10::aten::linear;
  };
  std::vector<torch::jit::Node*> layers, products;
  for (torch::jit::Node* node : graph->nodes()) {  // top-level nodes; sub-blocks refused below
    for (torch::jit::Block* block : node->blocks())
      for (torch::jit::Node* inner : block->nodes())
        if (is_layer(inner->kind()) || inner->kind() == c10::aten::matmul) return -1;
    if (is_layer(node->kind())) layers.push_back(node);
    if (node->kind() == c10::aten::matmul) products.push_back(node);
  }
  if (layers.empty() && products.empty()) return 0;
  std::vector<std::int64_t> per_output;  // MACs per output element, by layer
  std::vector<torch::jit::Value*> outputs;
  for (torch::jit::Node* node : layers) {
    const auto weight = torch::jit::toIValue(node->input(1));
    if (!weight || !weight->isTensor()) return -1;
    per_output.push_back(weight->toTensor().numel() / weight->toTensor().size(0));
    outputs.push_back(node->output());
  }
  for (torch::jit::Node* node : products) outputs.push_back(node->input(0));  // its last size is the inner dimension
  for (torch::jit::Node* node : products) outputs.push_back(node->output());
  // Return those values instead of the unit's output, then run the graph once.
  graph->setInsertPoint(graph->return_node());
  torch::jit::Node* list = graph->insertNode(graph->createList(c10::TensorType::get(), outputs));
  while (graph->outputs().size() > 0) graph->eraseOutput(0);
  graph->registerOutput(list->output());
  torch::jit::GraphFunction function("kgain_count_macs", graph, nullptr);
  std::vector<c10::IValue> stack{frozen._ivalue(), x};
  {
    c10::InferenceMode guard;
    function.run(stack);
  }
  const auto results = stack.back().toTensorList();
  std::int64_t macs = 0;
  // x is one image, so every output element is that image's, whatever dimension 0 holds (Swin's
  // windows are batched in it).
  for (std::size_t i = 0; i < layers.size(); ++i) macs += results.get(i).numel() * per_output[i];
  for (std::size_t i = 0; i < products.size(); ++i) {
    const at::Tensor left = results.get(layers.size() + i), out = results.get(layers.size() + products.size() + i);
    macs += out.numel() * left.size(-1);
  }
  return macs;
}

// Shapes, parameters and multiply-accumulates at every tap for a square input of `input_size`:
// the units are run one after another on a zero image. Units partition the trunk, so the
// parameters up to a tap are the sum over the units up to it.
// `unit_names` name the units in messages; `what` names the network. `with_macs = false` skips
// the MAC count (which freezes every unit) when only shapes are wanted. `unit_layouts`: the
// layout of every unit's output; empty: by rank (layout_of_rank).
inline std::vector<TapInfo> inspect_units(const std::vector<torch::jit::Module>& units,
                                          const std::vector<std::string>& unit_names,
                                          const std::vector<std::string>& tap_names,
                                          const std::vector<std::size_t>& tap_units, std::int64_t input_size,
                                          const std::string& what, bool with_macs = true,
                                          const std::vector<TapLayout>& unit_layouts = {}) {
  at::Tensor x = torch::zeros({1, 3, input_size, input_size});
  std::vector<TapInfo> out;
  std::int64_t parameters = 0, macs = 0;
  std::size_t next_tap = 0;
  for (std::size_t i = 0; i <= tap_units.back(); ++i) {
    torch::jit::Module unit = units[i];
    unit.eval();
    for (const auto& p : unit.parameters()) parameters += p.numel();
    try {
      const std::int64_t unit_macs = with_macs ? count_macs(unit, x) : -1;
      macs = (macs < 0 || unit_macs < 0) ? -1 : macs + unit_macs;
      c10::InferenceMode guard;
      x = unit.forward({x}).toTensor();
    } catch (const std::exception& e) {
      std::string reason = e.what();
      if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) reason = c10_error->what_without_backtrace();
      throw std::runtime_error(what + ": running " + unit_names[i] + " on the output of the modules before it (" +
                               std::to_string(input_size) +
                               " px input) failed; is it a tap point that runs in sequence? " + reason);
    }
    if (i != tap_units[next_tap]) continue;
    TapInfo info;
    info.name = tap_names[next_tap];
    info.shape.assign(x.sizes().begin() + 1, x.sizes().end());
    const TapLayout layout =
        unit_layouts.empty() ? layout_of_rank(static_cast<std::size_t>(x.dim()), info.name) : unit_layouts[i];
    info.form = form_of(layout);
    info.feature_dim = layout == TapLayout::nchw ? x.size(1) : x.size(-1);
    info.parameters = parameters;
    info.macs = macs;
    out.push_back(info);
    ++next_tap;
  }
  return out;
}

// How a random variant's weights are drawn. Every rule is deterministic given the generator.
enum class InitRule {
  kaiming_normal_fan_out,  // N(0, 2 / fan_out): conv weights in ResNet, VGG, MobileNet
  kaiming_normal_fan_in,   // N(0, 2 / fan_in): conv weights in DenseNet
  kaiming_uniform_linear,  // U(+-1/sqrt(fan_in)): nn.Linear's and nn.Conv2d's own default (a = sqrt(5))
  normal_001,              // N(0, 0.01): linear weights in VGG and MobileNetV2
  ones,
  zeros,
  uniform_fan_in_bias,  // U(+-1/sqrt(fan_in)) of the layer's weight: nn.Linear's default bias
};

inline std::int64_t fan_in(const at::Tensor& weight) { return weight.dim() < 2 ? 1 : weight.numel() / weight.size(0); }
inline std::int64_t fan_out(const at::Tensor& weight) { return weight.dim() < 2 ? 1 : weight.numel() / weight.size(1); }

// Draws `tensor` by `rule`; `weight` is the layer's weight (for a bias's fan-in).
inline void draw(at::Tensor tensor, InitRule rule, const at::Tensor& weight, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  switch (rule) {
    case InitRule::kaiming_normal_fan_out: tensor.normal_(0.0, std::sqrt(2.0 / fan_out(weight)), generator); break;
    case InitRule::kaiming_normal_fan_in: tensor.normal_(0.0, std::sqrt(2.0 / fan_in(weight)), generator); break;
    case InitRule::kaiming_uniform_linear:
    case InitRule::uniform_fan_in_bias: {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(weight)));
      tensor.uniform_(-bound, bound, generator);
      break;
    }
    case InitRule::normal_001: tensor.normal_(0.0, 0.01, generator); break;
    case InitRule::ones: tensor.fill_(1.0); break;
    case InitRule::zeros: tensor.zero_(); break;
  }
}

// Batch-norm buffers of a fresh network: running mean 0, variance 1, no batches seen.
inline void reset_batch_norm_buffers(torch::jit::Module& module) {
  torch::NoGradGuard no_grad;
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    const std::string leaf = b.name.substr(b.name.rfind('.') + 1);
    if (leaf == "running_mean" || leaf == "num_batches_tracked")
      b.value.zero_();
    else if (leaf == "running_var")
      b.value.fill_(1.0);
  }
}

// The architecture-agnostic rule (`init = "kaiming_fan_out"` / `"kaiming_fan_in"`): every weight
// with 2+ dimensions Kaiming normal, other weights (norm layers) 1, biases and other 1-d
// parameters 0; batch-norm buffers reset. Parameters are drawn in named_parameters() order
// from one generator seeded with `seed`.
inline void reinitialise_generic(torch::jit::Module& module, std::uint64_t seed, bool use_fan_out) {
  auto generator = at::detail::createCPUGenerator(seed);
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    const std::string leaf = p.name.substr(p.name.rfind('.') + 1);
    if (p.value.dim() >= 2)
      draw(p.value, use_fan_out ? InitRule::kaiming_normal_fan_out : InitRule::kaiming_normal_fan_in, p.value,
           generator);
    else
      draw(p.value, leaf == "weight" ? InitRule::ones : InitRule::zeros, p.value, generator);
  }
  reset_batch_norm_buffers(module);
}

}  // namespace kgain::trunk
