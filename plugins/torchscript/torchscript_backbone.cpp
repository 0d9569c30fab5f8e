// Backbone `torchscript`: any network saved with torch.jit.save, cut after each child of a
// sequential container.
//
// Taps are children of one container (default `features`, as in torchvision's VGG, DenseNet,
// MobileNet and EfficientNet; "" for the top module, as ResNet needs: conv1 ... layer4). The
// container's children must be what the network runs first, one after another, which is true
// of those families; a tap list is checked against the container's children.
//
// Extraction runs one module that calls the children in order and pools each tap's activation
// as soon as it is produced, so all taps cost one forward pass. That module is frozen and
// optimized for inference (oneDNN, fused ops), which runs 2-5x faster than the loaded module;
// tests check that its features equal the plain module's.
//
// Random variants re-draw every parameter from the seed (documented in docs/protocol.md):
//   weights with 2+ dimensions (conv, linear): Kaiming normal, fan-out, ReLU gain: N(0, 2/fan_out)
//   other weights (norm layers): 1;  biases: 0;  other 1-d parameters: 0
//   batch-norm buffers: running_mean 0, running_var 1, num_batches_tracked 0
// Other buffers (such as a stem's fixed input scaling) are part of the architecture and kept.
//
// Options:
//   file               (string, required) the TorchScript file
//   container          (string, default "features") module path of the sequential container
//   taps               (array of strings) module paths of the taps; default: every child
//   native_input_size  (integer, default 224) input side the weights were trained at
//   optimize           (bool, default true) freeze and optimize the extraction module
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/script.h>
#include <torch/torch.h>

#include <kgain/backbone.hpp>
#include <kgain/plugin.hpp>

namespace {

std::string fnv1a_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t h = 1469598103934665603ULL;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      h ^= static_cast<unsigned char>(buffer[i]);
      h *= 1099511628211ULL;
    }
  }
  std::ostringstream out;
  out << std::hex << h;
  return out.str();
}

torch::jit::Module submodule(const torch::jit::Module& root, const std::string& path) {
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

std::string pooling_expression(kgain::Pooling pooling) {
  switch (pooling) {
    case kgain::Pooling::avg: return "torch.mean(x, [2, 3])";
    case kgain::Pooling::max: return "torch.amax(x, [2, 3])";
    case kgain::Pooling::avgmax: return "torch.cat([torch.mean(x, [2, 3]), torch.amax(x, [2, 3])], 1)";
  }
  return "";
}

void reinitialise(torch::jit::Module& module, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    auto t = p.value;
    const std::string leaf = p.name.substr(p.name.rfind('.') + 1);
    if (t.dim() >= 2) {
      double fan_out = static_cast<double>(t.size(0));
      for (int64_t d = 2; d < t.dim(); ++d) fan_out *= static_cast<double>(t.size(d));
      t.normal_(0.0, std::sqrt(2.0 / fan_out), generator);
    } else if (leaf == "weight") {
      t.fill_(1.0);
    } else {
      t.zero_();
    }
  }
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    const std::string leaf = b.name.substr(b.name.rfind('.') + 1);
    if (leaf == "running_mean" || leaf == "num_batches_tracked") b.value.zero_();
    else if (leaf == "running_var") b.value.fill_(1.0);
  }
}

class TorchScriptNetwork : public kgain::Network {
 public:
  TorchScriptNetwork(torch::jit::Module full, torch::jit::Module taps) : full_(std::move(full)), taps_(std::move(taps)) {}
  std::vector<at::Tensor> extract(const at::Tensor& images) override {
    c10::InferenceMode guard;
    auto out = taps_.forward({images}).toTensorList();
    std::vector<at::Tensor> features;
    features.reserve(out.size());
    for (const at::Tensor& t : out) features.push_back(t.to(torch::kFloat32).contiguous());
    return features;
  }
  at::Tensor classify(const at::Tensor& images) override {
    c10::InferenceMode guard;
    return full_.forward({images}).toTensor();
  }

 private:
  torch::jit::Module full_;
  torch::jit::Module taps_;
};

class TorchScriptBackbone : public kgain::Backbone {
 public:
  explicit TorchScriptBackbone(const kgain::Options& options)
      : file_(options.require_path("file")),
        container_(options.get_string("container", "features")),
        native_input_size_(options.get_int("native_input_size", 224)),
        optimize_(options.get_bool("optimize", true)) {
    if (!std::filesystem::is_regular_file(file_))
      throw options.error("file", "the TorchScript file '" + file_ + "' does not exist");
    if (native_input_size_ <= 0)
      throw options.error("native_input_size", "must be positive (received " + std::to_string(native_input_size_) + ")");
    torch::jit::Module module = load();
    torch::jit::Module container;
    try {
      container = container_.empty() ? module : submodule(module, container_);
    } catch (const std::exception& e) {
      throw options.error("container", "'" + file_ + "' has no module '" + container_ + "'; its top-level children are: " +
                                           children_of(module));
    }
    for (const auto& child : container.named_children()) children_.push_back(child.name);
    if (children_.empty()) throw options.error("container", "'" + container_ + "' has no children to tap");

    const auto requested = options.get_string_list("taps", {});
    for (std::size_t i = 0; i < children_.size(); ++i) tap_children_.push_back(i);
    if (!requested.empty()) {
      tap_children_.clear();
      for (const auto& tap : requested) {
        std::size_t index = children_.size();
        for (std::size_t i = 0; i < children_.size(); ++i)
          if (path_of(children_[i]) == tap) index = i;
        if (index == children_.size())
          throw options.error("taps", "'" + tap + "' is not a child of the container '" + container_ + "'; the taps available are " +
                                          path_of(children_.front()) + " ... " + path_of(children_.back()));
        if (!tap_children_.empty() && index <= tap_children_.back())
          throw options.error("taps", "taps must be listed in execution order ('" + tap + "' comes too late)");
        tap_children_.push_back(index);
      }
    }
    fingerprint_ = fnv1a_file(file_);
    // The rank of each tap's activation (4 for maps, 2 after a flatten) decides its pooling.
    for (const auto& info : inspect(std::min<std::int64_t>(native_input_size_, 64))) tap_rank_.push_back(info.shape.size() + 1);
  }

  std::int64_t native_input_size() const override { return native_input_size_; }

  std::vector<std::string> taps() const override {
    std::vector<std::string> out;
    for (auto i : tap_children_) out.push_back(path_of(children_[i]));
    return out;
  }

  std::vector<kgain::TapInfo> inspect(std::int64_t input_size) override {
    torch::jit::Module module = load();
    module.eval();
    const auto container = container_.empty() ? module : submodule(module, container_);
    c10::InferenceMode guard;
    at::Tensor x = torch::zeros({1, 3, input_size, input_size});
    std::vector<kgain::TapInfo> out;
    std::int64_t parameters = 0;
    std::size_t next_tap = 0;
    for (std::size_t i = 0; i <= tap_children_.back(); ++i) {
      auto child = container.attr(children_[i]).toModule();
      for (const auto& p : child.parameters()) parameters += p.numel();
      try {
        x = child.forward({x}).toTensor();
      } catch (const c10::Error& e) {
        throw std::runtime_error("'" + file_ + "': running " + path_of(children_[i]) + " on a " + std::to_string(input_size) +
                                 " px input failed: " + e.what_without_backtrace());
      }
      if (i != tap_children_[next_tap]) continue;
      kgain::TapInfo info;
      info.name = path_of(children_[i]);
      info.shape.assign(x.sizes().begin() + 1, x.sizes().end());
      info.feature_dim = x.size(1);
      info.parameters = parameters;
      out.push_back(info);
      ++next_tap;
    }
    return out;
  }

  std::unique_ptr<kgain::Network> instantiate(const kgain::Variant& variant, kgain::Pooling pooling) override {
    torch::jit::Module module = load();
    if (variant.kind == kgain::Variant::Kind::random) reinitialise(module, variant.seed);
    module.eval();
    const auto container = container_.empty() ? module : submodule(module, container_);

    // A module that runs the children in order and returns every tap's pooled activation.
    torch::jit::Module taps(c10::QualifiedName("__torch__.kgain.TapExtractor"));
    taps.register_attribute("training", c10::BoolType::get(), false);
    std::ostringstream src;
    src << "def forward(self, x: Tensor) -> List[Tensor]:\n    out: List[Tensor] = []\n";
    std::size_t next_tap = 0;
    for (std::size_t i = 0; i <= tap_children_.back(); ++i) {
      taps.register_module("child" + std::to_string(i), container.attr(children_[i]).toModule());
      src << "    x = self.child" << i << ".forward(x)\n";
      if (i != tap_children_[next_tap]) continue;
      // Activation maps are pooled; a tap after a flatten is already a vector.
      src << "    out.append(" << (tap_rank_[next_tap] == 4 ? pooling_expression(pooling) : "x") << ")\n";
      ++next_tap;
    }
    src << "    return out\n";
    taps.define(src.str());
    taps.eval();
    if (optimize_) {
      taps = torch::jit::freeze(taps);
      taps = torch::jit::optimize_for_inference(taps);
    }
    return std::make_unique<TorchScriptNetwork>(module, taps);
  }

  std::string fingerprint() const override { return "torchscript:" + fingerprint_; }
  std::string description() const override { return "TorchScript " + file_ + " (taps: children of '" + container_ + "')"; }

 private:
  torch::jit::Module load() const {
    try {
      return torch::jit::load(file_, torch::kCPU);
    } catch (const c10::Error& e) {
      throw std::runtime_error("cannot load '" + file_ + "' as TorchScript (saved with torch.jit.save?): " +
                               e.what_without_backtrace());
    }
  }
  std::string path_of(const std::string& child) const { return container_.empty() ? child : container_ + "." + child; }
  static std::string children_of(const torch::jit::Module& m) {
    std::string names;
    for (const auto& c : m.named_children()) names += (names.empty() ? "" : ", ") + c.name;
    return names.empty() ? "(none)" : names;
  }

  std::string file_;
  std::string container_;
  std::int64_t native_input_size_;
  bool optimize_;
  std::vector<std::string> children_;
  std::vector<std::size_t> tap_children_;
  std::vector<std::size_t> tap_rank_;
  std::string fingerprint_;
};

}  // namespace

KGAIN_LIBRARY("torchscript", kgain::make_plugin<TorchScriptBackbone>("torchscript", "1.0.0",
                                                                     "any TorchScript CNN, tapped after each child of a container"))
