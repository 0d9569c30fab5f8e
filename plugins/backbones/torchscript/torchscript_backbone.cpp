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
// Random variants re-draw every parameter from the seed (documented in docs/protocol.md). A
// TorchScript file does not say which layer is which, so the rule is architecture-agnostic
// (`init`, see plugins/backbones/common/torchscript_trunk.hpp):
//   weights with 2+ dimensions (conv, linear): Kaiming normal, ReLU gain: N(0, 2/fan_out)
//   ("kaiming_fan_out", the default) or N(0, 2/fan_in) ("kaiming_fan_in");
//   other weights (norm layers): 1;  biases: 0;  other 1-d parameters: 0
//   batch-norm buffers: running_mean 0, running_var 1, num_batches_tracked 0
// Other buffers (such as a stem's fixed input scaling) are part of the architecture and kept.
// Batch-norm recalibration is not offered: a scripted BatchNorm's momentum is a compile-time
// constant, so its running statistics cannot be made a plain average. The `native` backbone
// offers it.
//
// Options: `declared_options` below (`kgain list --options torchscript`).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/script.h>
#include <torch/torch.h>

#include <kgain/backbone.hpp>
#include <kgain/plugin.hpp>
#include "torchscript_trunk.hpp"
#include <kgain/util/zip_check.hpp>

namespace {

class TorchScriptBackbone : public kgain::Backbone {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("file", nullptr, "a TorchScript file (`torch.jit.save`)").required(),
      kgain::option::string("container", "\"features\"", "module whose children are the taps; \"\" = the top module"),
      kgain::option::strings("taps", nullptr, "module paths of the taps, in execution order").computed("every child"),
      kgain::option::integer("native_input_size", "224", "input side the weights were trained at").between(1, 1024),
      kgain::option::boolean("optimize", "true", "freeze and optimize the extraction module (same features, faster)"),
      kgain::option::string("init", "\"kaiming_fan_out\"",
                            "random weights: Kaiming normal with fan-out or fan-in on every weight of 2+ dimensions "
                            "(docs/protocol.md)")
          .one_of("kaiming_fan_out|kaiming_fan_in"),
  };

  explicit TorchScriptBackbone(const kgain::Options& options)
      : file_(options.require_path("file")),
        container_(options.get_string("container")),
        native_input_size_(options.get_int("native_input_size")),
        optimize_(options.get_bool("optimize")),
        init_(options.get_string("init")) {
    if (!std::filesystem::is_regular_file(file_))
      throw options.error("file", "the TorchScript file '" + file_ + "' does not exist");
    try {
      kgain::verify_zip_checksums(file_);  // LibTorch's reader does not check them
    } catch (const std::exception& e) {
      throw options.error("file", e.what());
    }
    torch::jit::Module module = load();
    torch::jit::Module container;
    try {
      container = container_.empty() ? module : kgain::trunk::module_at(module, container_);
    } catch (const std::exception& e) {
      throw options.error("container", "'" + file_ + "' has no module '" + container_ +
                                           "'; its top-level children are: " + children_of(module));
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
          throw options.error("taps", "'" + tap + "' is not a child of the container '" + container_ +
                                          "'; the taps available are " + path_of(children_.front()) + " ... " +
                                          path_of(children_.back()));
        if (!tap_children_.empty() && index <= tap_children_.back())
          throw options.error("taps", "taps must be listed in execution order ('" + tap + "' comes too late)");
        tap_children_.push_back(index);
      }
    }
    fingerprint_ = kgain::file_fingerprint(file_) + (init_ == "kaiming_fan_out" ? "" : ":" + init_);
    // The rank of each tap's activation (4 for maps, 2 after a flatten) decides its pooling.
    for (const auto& info : inspect_taps(std::min<std::int64_t>(native_input_size_, 64), /*with_macs=*/false))
      tap_layouts_.push_back(info.form == kgain::TapForm::vector ? kgain::trunk::TapLayout::vector
                                                                 : kgain::trunk::TapLayout::nchw);
  }

  std::int64_t native_input_size() const override { return native_input_size_; }

  std::vector<std::string> taps() const override {
    std::vector<std::string> out;
    for (auto i : tap_children_) out.push_back(path_of(children_[i]));
    return out;
  }

  std::vector<kgain::TapInfo> inspect(std::int64_t input_size) override { return inspect_taps(input_size, true); }

  std::vector<kgain::TapInfo> inspect_taps(std::int64_t input_size, bool with_macs) {
    torch::jit::Module module = load();
    module.eval();
    std::vector<std::string> unit_names;
    for (const auto& child : children_) unit_names.push_back(path_of(child));
    return kgain::trunk::inspect_units(units_of(module), unit_names, taps(), tap_children_, input_size,
                                       "'" + file_ + "'", with_macs);
  }

  std::unique_ptr<kgain::Network> instantiate(const kgain::Variant& variant, kgain::Pooling pooling) override {
    if (variant.batch_norm_calibration.defined())
      throw std::runtime_error("the torchscript backbone cannot recalibrate batch norm; use the native backbone");
    torch::jit::Module module = load();
    if (variant.kind == kgain::Variant::Kind::random)
      kgain::trunk::reinitialise_generic(module, variant.seed, init_ == "kaiming_fan_out");
    module.eval();
    return kgain::trunk::trunk_network(module, units_of(module), tap_children_, tap_layouts_, pooling, optimize_);
  }

  bool has_pretrained_weights() const override { return true; }
  bool can_recalibrate_batch_norm() const override { return false; }
  std::string fingerprint() const override { return "torchscript:" + fingerprint_; }
  std::string description() const override {
    return "TorchScript " + file_ + " (taps: children of '" + container_ + "')";
  }

 private:
  // The module with its weights checked: a NaN or infinity in a parameter or buffer is
  // damage, and would only show up later as features nobody can score.
  torch::jit::Module load() const {
    torch::jit::Module module;
    try {
      module = torch::jit::load(file_, torch::kCPU);
    } catch (const c10::Error& e) {
      throw std::runtime_error("cannot load '" + file_ +
                               "' as TorchScript (saved with torch.jit.save?): " + e.what_without_backtrace());
    }
    const auto check = [&](const std::string& name, const at::Tensor& t) {
      if (t.is_floating_point() && !at::isfinite(t).all().item<bool>())
        throw std::runtime_error("'" + file_ + "': the tensor '" + name +
                                 "' holds NaN or infinite values; the weights are damaged "
                                 "(download or copy the file again)");
    };
    for (const auto& p : module.named_parameters(true)) check(p.name, p.value);
    for (const auto& b : module.named_buffers(true)) check(b.name, b.value);
    return module;
  }
  std::vector<torch::jit::Module> units_of(const torch::jit::Module& module) const {
    const auto container = container_.empty() ? module : kgain::trunk::module_at(module, container_);
    std::vector<torch::jit::Module> units;
    for (const auto& name : children_) units.push_back(container.attr(name).toModule());
    return units;
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
  std::string init_;
  std::vector<std::string> children_;
  std::vector<std::size_t> tap_children_;
  std::vector<kgain::trunk::TapLayout> tap_layouts_;
  std::string fingerprint_;
};

}  // namespace

KGAIN_LIBRARY("torchscript",
              kgain::make_plugin<TorchScriptBackbone>("torchscript", "1.0.0",
                                                      "any TorchScript CNN, tapped after each child of a container"))
