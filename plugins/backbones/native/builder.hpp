// Building torchvision-named networks as trees of small TorchScript modules (internal to the
// native backbone plugin; see architectures.hpp).
// Threads: a Builder is used by one thread; the modules it makes share its compilation unit.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "architectures.hpp"

namespace kgain::native {

using torch::jit::Module;

// Creates the modules of one network. Every module gets its own TorchScript class (its forward
// bakes in its strides and sizes as literals) in one compilation unit per network.
class Builder {
 public:
  Builder(bool tf_same, double bn_eps)
      : cu_(std::make_shared<torch::jit::CompilationUnit>()), tf_same_(tf_same), bn_eps_(bn_eps) {}

  Module make(const std::string& kind) {
    Module m(c10::QualifiedName("__torch__.kgain_native." + kind + "_" + std::to_string(count_++)), cu_, false);
    m.register_attribute("training", c10::BoolType::get(), false);
    return m;
  }

  // A k x k convolution, padding (k - 1) / 2 as torchvision (or `padding` when given), or
  // TensorFlow 'SAME' when the builder says so (only differs at stride 2: SAME pads the
  // bottom/right more). `in_range`: scale the input from ImageNet normalization to [-1, 1] first
  // (the stem of TensorFlow models).
  Module conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride = 1, std::int64_t groups = 1,
              bool bias = false, bool in_range = false, std::int64_t padding = -1) {
    Module m = make("Conv");
    m.register_parameter("weight", torch::empty({out, in / groups, k, k}), false);
    if (bias) m.register_parameter("bias", torch::zeros({out}), false);
    std::ostringstream src;
    src << "def forward(self, x: Tensor) -> Tensor:\n";
    if (in_range) {
      // x01 = x * std + mean; x_tf = 2 * x01 - 1.
      m.register_buffer("in_scale", torch::tensor({2 * 0.229f, 2 * 0.224f, 2 * 0.225f}).view({1, 3, 1, 1}));
      m.register_buffer("in_shift", torch::tensor({2 * 0.485f - 1, 2 * 0.456f - 1, 2 * 0.406f - 1}).view({1, 3, 1, 1}));
      src << "    x = x * self.in_scale + self.in_shift\n";
    }
    const std::string b = bias ? "self.bias" : "None";
    std::int64_t pad = padding >= 0 ? padding : (k - 1) / 2;
    if (tf_same_ && stride > 1) {
      src << "    ih = x.size(2)\n    iw = x.size(3)\n"
          << "    ph = max((ih + " << stride - 1 << ") // " << stride << " * " << stride << " - " << stride << " + "
          << k << " - ih, 0)\n"
          << "    pw = max((iw + " << stride - 1 << ") // " << stride << " * " << stride << " - " << stride << " + "
          << k << " - iw, 0)\n"
          << "    x = torch.constant_pad_nd(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], 0.0)\n";
      pad = 0;
    }
    src << "    return torch.conv2d(x, self.weight, " << b << ", [" << stride << ", " << stride << "], [" << pad << ", "
        << pad << "], [1, 1], " << groups << ")\n";
    m.define(src.str());
    return m;
  }

  // Batch norm that, in training mode, accumulates a plain average of the batch statistics
  // (PyTorch's momentum=None): what batch-norm recalibration needs. Eval mode is torchvision's.
  Module batch_norm(std::int64_t c) {
    Module m = make("BatchNorm");
    m.register_parameter("weight", torch::ones({c}), false);
    m.register_parameter("bias", torch::zeros({c}), false);
    m.register_buffer("running_mean", torch::zeros({c}));
    m.register_buffer("running_var", torch::ones({c}));
    m.register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
    std::ostringstream src;
    src.precision(17);
    src << "def forward(self, x: Tensor) -> Tensor:\n"
        << "    factor = 0.0\n"
        << "    if self.training:\n"
        << "        self.num_batches_tracked.add_(1)\n"
        << "        factor = 1.0 / float(self.num_batches_tracked.item())\n"
        << "    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, self.training, "
           "factor, "
        << bn_eps_ << ", False)\n";
    m.define(src.str());
    return m;
  }

  Module linear(std::int64_t in, std::int64_t out, bool bias = true) {
    Module m = make("Linear");
    m.register_parameter("weight", torch::empty({out, in}), false);
    if (bias) m.register_parameter("bias", torch::zeros({out}), false);
    m.define(std::string("def forward(self, x: Tensor) -> Tensor:\n    return torch.linear(x, self.weight, ") +
             (bias ? "self.bias" : "None") + ")\n");
    return m;
  }

  // nn.LayerNorm over the last dimension (`channels_first`: over dimension 1 of a [n, c, h, w]
  // map, as ConvNeXt's LayerNorm2d, which permutes to channels-last and back).
  Module layer_norm(std::int64_t c, double eps, bool channels_first = false) {
    Module m = make("LayerNorm");
    m.register_parameter("weight", torch::ones({c}), false);
    m.register_parameter("bias", torch::zeros({c}), false);
    std::ostringstream src;
    src.precision(17);
    src << "def forward(self, x: Tensor) -> Tensor:\n";
    if (channels_first) src << "    x = x.permute([0, 2, 3, 1])\n";
    src << "    x = torch.layer_norm(x, [" << c << "], self.weight, self.bias, " << eps << ")\n";
    src << (channels_first ? "    return x.permute([0, 3, 1, 2])\n" : "    return x\n");
    m.define(src.str());
    return m;
  }

  // A parameter-free module: `expression` of x (activation, pooling).
  Module function(const std::string& expression) {
    Module m = make("Function");
    m.define("def forward(self, x: Tensor) -> Tensor:\n    return " + expression + "\n");
    return m;
  }

  // Children run in order (nn.Sequential), named "0", "1", ... unless names are given.
  Module sequential(const std::vector<Module>& children, std::vector<std::string> names = {}) {
    Module m = make("Sequential");
    if (names.empty())
      for (std::size_t i = 0; i < children.size(); ++i) names.push_back(std::to_string(i));
    std::string src = "def forward(self, x: Tensor) -> Tensor:\n";
    for (std::size_t i = 0; i < children.size(); ++i) {
      m.register_module(names[i], children[i]);
      src += "    x = " + access("self", names[i]) + ".forward(x)\n";
    }
    m.define(src + "    return x\n");
    return m;
  }

  // Conv + BN + activation, as torchvision's Conv2dNormActivation (children 0, 1, 2).
  Module conv_bn_act(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride, std::int64_t groups,
                     const std::string& activation, bool in_range = false) {
    return sequential({conv(in, out, k, stride, groups, false, in_range), batch_norm(out), function(activation)});
  }

  // `self.name` or getattr(self, "0") for names that are not identifiers.
  static std::string access(const std::string& base, const std::string& name) {
    if (!name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_'))
      return base + "." + name;
    return "getattr(" + base + ", \"" + name + "\")";
  }

 private:
  std::shared_ptr<torch::jit::CompilationUnit> cu_;
  bool tf_same_;
  double bn_eps_;
  int count_ = 0;
};

inline const std::string relu = "torch.relu(x)";
inline const std::string relu6 = "torch.hardtanh(x, 0.0, 6.0)";
inline const std::string silu = "torch.silu(x)";
inline const std::string gelu = "torch.gelu(x)";

// The root module: runs the trunk units in order, then `head` (TorchScript lines using x).
inline void define_root(Module& root, const std::vector<std::string>& unit_paths, const std::string& head) {
  std::string src = "def forward(self, x: Tensor) -> Tensor:\n";
  for (const auto& path : unit_paths) {
    std::string expr = "self";
    std::stringstream ss(path);
    std::string part;
    while (std::getline(ss, part, '.')) expr = Builder::access(expr, part);
    src += "    x = " + expr + ".forward(x)\n";
  }
  root.define(src + head);
}

inline void finish(Architecture& a, const std::string& head) {
  define_root(a.root, a.unit_paths, head);
  if (a.unit_layouts.empty()) a.unit_layouts.assign(a.unit_paths.size(), trunk::TapLayout::nchw);
  for (const auto& path : a.unit_paths) a.units.push_back(trunk::module_at(a.root, path));
  a.root.eval();
}

// Random initialization helpers for the architectures with their own rules (the transformers
// and modern CNNs): torch.nn.init's formulas, drawn from the given generator.
namespace init {

// torch.nn.init.trunc_normal_(t, 0, std, a, b): inverse-CDF sampling, as PyTorch does it.
inline void trunc_normal(const at::Tensor& t, double std, at::Generator& g, double a = -2.0, double b = 2.0) {
  torch::NoGradGuard no_grad;
  const auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = cdf(a / std), u = cdf(b / std);
  t.uniform_(2 * l - 1, 2 * u - 1, g);
  t.erfinv_();
  t.mul_(std * std::sqrt(2.0));
  t.clamp_(a, b);
}

// torch.nn.init.xavier_uniform_ (gain 1) of a 2-d weight [fan_out, fan_in].
inline void xavier_uniform(const at::Tensor& t, at::Generator& g) {
  torch::NoGradGuard no_grad;
  const double bound = std::sqrt(6.0 / static_cast<double>(t.size(0) + t.size(1)));
  t.uniform_(-bound, bound, g);
}

inline void normal(const at::Tensor& t, double std, at::Generator& g) {
  torch::NoGradGuard no_grad;
  t.normal_(0.0, std, g);
}

inline void constant(const at::Tensor& t, double value) {
  torch::NoGradGuard no_grad;
  t.fill_(value);
}

// nn.Linear's and nn.Conv2d's own default: U(+-1/sqrt(fan_in)) for the weight (kaiming_uniform_
// with a = sqrt(5)) and for the bias.
inline void default_uniform(const at::Tensor& t, std::int64_t fan_in, at::Generator& g) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  t.uniform_(-bound, bound, g);
}

}  // namespace init
}  // namespace kgain::native
