// Backbone `native`: torchvision's architectures (ResNet, VGG, DenseNet, MobileNet, ConvNeXt,
// EfficientNet, ViT, Swin) built in C++ with torchvision's module names, loading weights from
// `torch.save(model.state_dict())` or .safetensors files, with torchvision's, timm's or Hugging
// Face's key names (ViT).
//
// Unlike a TorchScript file, kgain knows which layer is which here, so a random variant gets the
// architecture's own initialization (torchvision's rules, `init = "torchvision"`), and its
// batch-norm statistics can be re-estimated on training images (the core's
// `[variants] recalibrate_batch_norm`): a random network keeps running mean 0 / variance 1,
// which no longer normalizes anything after a few layers.
//
// Options: `declared_options` below (`kgain list --options native`).
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <kgain/backbone.hpp>
#include <kgain/plugin.hpp>
#include "torchscript_trunk.hpp"

#include "architectures.hpp"
#include "key_maps.hpp"
#include "safetensors.hpp"
#include "state_dict.hpp"

namespace {

using kgain::native::Architecture;
using kgain::native::LeafKind;

std::string shape_string(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// A .safetensors file or a torch.save state dict, told apart by content. DataParallel
// checkpoints prefix every key with "module.".
std::map<std::string, at::Tensor> read_weights(const std::string& path) {
  auto out = kgain::native::looks_like_safetensors(path) ? kgain::native::read_safetensors(path)
                                                         : kgain::native::read_state_dict(path);
  if (std::all_of(out.begin(), out.end(), [](const auto& e) { return e.first.rfind("module.", 0) == 0; })) {
    std::map<std::string, at::Tensor> stripped;
    for (auto& [k, v] : out) stripped[k.substr(7)] = v;
    out = std::move(stripped);
  }
  return out;
}

// The module path of the architecture's classifier (its last linear layer); "" when none.
std::string head_path(const Architecture& a) {
  std::string head;
  for (const auto& m : a.root.named_modules())
    if (kgain::native::leaf_kind(m.value) == LeafKind::linear) head = m.name;
  return head;
}

// Copies every parameter and persistent buffer from the state dict; names every missing key,
// unexpected key and shape mismatch in one error. A file without the classifier's weight and
// bias, and with nothing else amiss, is a trunk (timm's num_classes = 0, Hugging Face's ViTModel,
// the pathology encoders): it loads, and the function returns false (no classifier).
bool load_state_dict(Architecture& a, const std::map<std::string, at::Tensor>& state, const std::string& path,
                     const std::string& architecture) {
  std::vector<std::string> missing, mismatched;
  std::set<std::string> used;
  const std::set<std::string> skip(a.non_persistent_buffers.begin(), a.non_persistent_buffers.end());
  torch::NoGradGuard no_grad;
  const auto copy = [&](const std::string& module_name, at::Tensor target, bool optional) {
    if (skip.count(module_name)) return;
    const auto key_it = a.state_dict_keys.find(module_name);
    const std::string name = key_it == a.state_dict_keys.end() ? module_name : key_it->second;
    auto it = state.find(name);
    if (it == state.end()) {
      if (!optional) missing.push_back(name);
      return;
    }
    used.insert(name);
    if (it->second.sizes() != target.sizes()) {
      mismatched.push_back(name + " (file " + shape_string(it->second) + ", model " + shape_string(target) + ")");
      return;
    }
    // Integer bytes copied into a float parameter are numbers, but not the weights: a file that
    // declares I32 for float32 data would load as nonsense (safetensors' dtype is the file's word).
    if (target.is_floating_point() && !it->second.is_floating_point()) {
      mismatched.push_back(name + " (file " + std::string(c10::toString(it->second.scalar_type())) +
                           ", an integer type, where the model has a floating-point parameter)");
      return;
    }
    target.copy_(it->second);
  };
  for (const auto& p : a.root.named_parameters(true)) copy(p.name, p.value, false);
  for (const auto& b : a.root.named_buffers(true))  // old checkpoints lack num_batches_tracked, as PyTorch allows
    copy(b.name, b.value, b.name.size() >= 19 && b.name.substr(b.name.size() - 19) == "num_batches_tracked");
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : state)
    if (!used.count(name)) unexpected.push_back(name);
  const std::string head = head_path(a);
  std::vector<std::string> head_keys{head + ".weight", head + ".bias"};
  if (missing == head_keys && unexpected.empty() && mismatched.empty()) return false;
  if (missing.empty() && unexpected.empty() && mismatched.empty()) return true;
  std::string message = "'" + path + "' does not fit " + architecture + ":";
  if (!missing.empty()) message += "\n  " + std::to_string(missing.size()) + " missing keys: " + join(missing);
  if (!unexpected.empty())
    message += "\n  " + std::to_string(unexpected.size()) + " unexpected keys: " + join(unexpected);
  if (!mismatched.empty())
    message += "\n  " + std::to_string(mismatched.size()) + " shape or type mismatches: " + join(mismatched);
  message +=
      "\n  Check `architecture` (and `width` for mobilenet_v1, the shape options for vit, `key_format` for timm or "
      "Hugging Face names).";
  throw std::runtime_error(message);
}

// The output size of the classifier in `state`: the rows of the weight of the architecture's
// last linear layer, when the file has it; 0 when it does not.
std::int64_t classifier_size(const Architecture& a, const std::map<std::string, at::Tensor>& state) {
  const std::string head = head_path(a);
  const auto it = head.empty() ? state.end() : state.find(head + ".weight");
  return it != state.end() && it->second.dim() == 2 ? it->second.size(0) : 0;
}

// torchvision's initialization of a fresh model, drawn from one generator in module order.
void reinitialise_torchvision(torch::jit::Module& root, const Architecture& a, std::uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  if (a.initialise) {
    a.initialise(root, generator);
    return;
  }
  using kgain::trunk::InitRule;
  for (const auto& m : root.named_modules()) {
    const auto kind = kgain::native::leaf_kind(m.value);
    if (kind == LeafKind::other) continue;
    const at::Tensor weight = m.value.attr("weight").toTensor();
    const bool has_bias = m.value.hasattr("bias") && m.value.attr("bias").isTensor();
    const at::Tensor bias = has_bias ? m.value.attr("bias").toTensor() : at::Tensor();
    if (kind == LeafKind::conv) {
      kgain::trunk::draw(weight, a.conv_weight, weight, generator);
      if (has_bias) kgain::trunk::draw(bias, InitRule::zeros, weight, generator);
    } else if (kind == LeafKind::batch_norm) {
      kgain::trunk::draw(weight, InitRule::ones, weight, generator);
      kgain::trunk::draw(bias, InitRule::zeros, weight, generator);
    } else {
      kgain::trunk::draw(weight, a.linear_weight, weight, generator);
      kgain::trunk::draw(bias, a.linear_bias, weight, generator);
    }
  }
  kgain::trunk::reset_batch_norm_buffers(root);
}

// Re-estimates every batch norm's running statistics as the plain average over batches of the
// calibration images (the batch norms average when in training mode; no gradient).
void recalibrate_batch_norm(torch::jit::Module& root, const at::Tensor& images) {
  kgain::trunk::reset_batch_norm_buffers(root);
  torch::NoGradGuard no_grad;
  root.train(true);
  constexpr std::int64_t batch = 64;
  for (std::int64_t i = 0; i < images.size(0); i += batch)
    root.forward({images.slice(0, i, std::min(images.size(0), i + batch))});
  root.train(false);
}

// One of the five keys that shape `architecture = "vit"` (refused with any other architecture).
constexpr kgain::OptionSpec vit_shape_option(const char* name, const char* meaning) {
  return kgain::option::integer(name, nullptr, meaning).computed("(required with `vit`)").between(1, 100000);
}

class NativeBackbone : public kgain::Backbone {
 public:
  static constexpr std::array declared_options{
      kgain::option::string("architecture", nullptr,
                            "a registered architecture: resnet, vgg, densenet, mobilenet, convnext, efficientnet, "
                            "vit, swin (`kgain list` names them; `kgain inspect NAME` shows one)")
          .required(),
      kgain::option::path("weights", nullptr,
                          "a `torch.save` state dict or a `.safetensors` file with torchvision's key names (ViT: also "
                          "timm's or Hugging Face's); a file without the classifier loads as a trunk")
          .computed("(none: random variants only)"),
      kgain::option::string("key_format", nullptr, "ViT weights: `torchvision`, `timm` or `huggingface` key names")
          .computed("detected from the keys")
          .one_of("torchvision|timm|huggingface"),
      kgain::option::number("layer_norm_eps", "1e-6", "ViTs: the layer norms' epsilon")
          .noting("Hugging Face keys: 1e-12")
          .positive()
          .at_most(1),
      kgain::option::strings("taps", nullptr,
                             "module paths (`layer2.1`, `features.7`); a stage (`layer2`) means its last block")
          .computed("the block boundaries"),
      vit_shape_option("patch_size", "`architecture = \"vit\"`: patch side in pixels"),
      vit_shape_option("layers", "`architecture = \"vit\"`: encoder blocks"),
      vit_shape_option("heads", "`architecture = \"vit\"`: attention heads"),
      vit_shape_option("hidden_dim", "`architecture = \"vit\"`: token width"),
      vit_shape_option("mlp_dim", "`architecture = \"vit\"`: MLP width"),
      kgain::option::string("padding", "\"torch\"", "MobileNets: `tf_same` padding for TensorFlow weights")
          .one_of("torch|tf_same"),
      kgain::option::string("input_range", nullptr,
                            "MobileNets: `tf` (the stem maps the normalized input to [-1, 1]) for TensorFlow weights")
          .computed("\"imagenet\" (\"tf\" with `tf_same` padding)")
          .one_of("imagenet|tf"),
      kgain::option::number("width", "1.0", "MobileNetV1 width multiplier (the published widths are 0.25 to 1)")
          .between(0.05, 4),
      kgain::option::integer("num_classes", nullptr, "classifier size (the iNaturalist MobileNets have 964 and 1,021)")
          .computed("the weights file's classifier, else 1000")
          .between(1, 1000000),
      kgain::option::string("init", "\"torchvision\"",
                            "random weights: torchvision's rules per layer, or `kaiming_fan_out` / `kaiming_fan_in` "
                            "(the torchscript backbone's rules)")
          .one_of("torchvision|kaiming_fan_out|kaiming_fan_in"),
      kgain::option::integer("native_input_size", nullptr, "input side the weights were trained at")
          .computed("224 (EfficientNet: torchvision's crop, 240 ... 600; ViT: the weights' position grid x patch)")
          .between(1, 1024),
      kgain::option::boolean("optimize", nullptr,
                             "freeze and optimize the extraction module (same features; faster for CNNs)")
          .computed("true (false for ViT, Swin and ConvNeXt: measured faster plain, docs/performance.md)"),
      kgain::option::boolean("channels_last", "false", "channels-last batches for the optimized module"),
  };

  explicit NativeBackbone(const kgain::Options& options)
      : name_(options.require_string("architecture")),
        weights_(options.get_path("weights", "")),
        init_(options.get_string("init")),
        channels_last_(options.get_bool("channels_last")) {
    kgain::native::ArchitectureOptions arch = architecture_options(options);
    // The classifier's size comes from the weights file (ImageNet's 1,000, iNaturalist birds'
    // 964, ...) unless num_classes says otherwise; it matters for LEEP, NCE and classify().
    const std::map<std::string, at::Tensor> state = weights_file(options, arch);
    try {
      prototype_ = kgain::native::build_architecture(arch);
      const std::int64_t in_file = classifier_size(prototype_, state);
      if (!options.has("num_classes") && in_file > 0 && in_file <= 1000000 && in_file != arch.num_classes) {
        arch.num_classes = in_file;
        prototype_ = kgain::native::build_architecture(arch);
      }
    } catch (const std::invalid_argument& e) {
      throw options.error("architecture", e.what());
    }
    optimize_ = options.get_bool("optimize", prototype_.optimize_by_default);
    native_input_size_ = options.get_int("native_input_size", prototype_.native_input_size);

    const auto requested = options.get_string_list("taps", prototype_.default_taps);
    for (const auto& tap : requested) {
      std::size_t index = find_unit(tap);
      if (index == prototype_.unit_paths.size())
        throw options.error("taps", "'" + tap + "' is not a tap point of " + name_ +
                                        "; available: " + join(prototype_.unit_paths) +
                                        " (or a stage that contains them, such as layer2)");
      if (!tap_units_.empty() && index <= tap_units_.back())
        throw options.error("taps", "taps must be listed in execution order ('" + tap + "' comes too late)");
      tap_units_.push_back(index);
      tap_names_.push_back(tap);
    }
    if (tap_units_.empty()) throw options.error("taps", "needs at least one tap");

    if (!weights_.empty()) has_classifier_ = load_state_dict(prototype_, state, weights_, name_);
    std::ostringstream fp;
    fp << "native:" << name_ << ":" << (arch.tf_same_padding ? "tf_same" : "torch") << ":"
       << (arch.tf_input_range ? "tf" : "imagenet") << ":" << arch.width << ":" << init_ << ":";
    if (prototype_.family == "vit")  // the shape of a "vit", and the norms' epsilon, change the features
      fp << "vit" << arch.vit_patch << "x" << arch.vit_layers << "x" << arch.vit_heads << "x" << arch.vit_hidden << "x"
         << arch.vit_mlp << "g" << arch.vit_grid << "e" << arch.layer_norm_eps << ":";
    fp << (weights_.empty() ? "random-only" : kgain::file_fingerprint(weights_));
    fingerprint_ = fp.str();
  }

  std::int64_t native_input_size() const override { return native_input_size_; }
  std::vector<std::string> taps() const override { return tap_names_; }

  std::vector<kgain::TapInfo> inspect(std::int64_t input_size) override {
    return kgain::trunk::inspect_units(prototype_.units, prototype_.unit_paths, tap_names_, tap_units_, input_size,
                                       name_, true, prototype_.unit_layouts);
  }

  std::unique_ptr<kgain::Network> instantiate(const kgain::Variant& variant, kgain::Pooling pooling) override {
    const bool random = variant.kind == kgain::Variant::Kind::random;
    if (!random && weights_.empty())
      throw std::runtime_error("the native " + name_ + " backbone has no `weights` file: only random variants exist");
    torch::jit::Module root = prototype_.root.clone();
    if (random) {
      if (init_ == "torchvision")
        reinitialise_torchvision(root, prototype_, variant.seed);
      else
        kgain::trunk::reinitialise_generic(root, variant.seed, init_ == "kaiming_fan_out");
    }
    if (variant.batch_norm_calibration.defined()) recalibrate_batch_norm(root, variant.batch_norm_calibration);
    root.eval();
    std::vector<torch::jit::Module> units;
    for (const auto& path : prototype_.unit_paths) units.push_back(kgain::trunk::module_at(root, path));
    std::vector<kgain::trunk::TapLayout> layouts;
    for (auto unit : tap_units_) layouts.push_back(prototype_.unit_layouts[unit]);
    return kgain::trunk::trunk_network(root, units, tap_units_, layouts, pooling, optimize_, has_classifier_,
                                       channels_last_);
  }

  bool has_pretrained_weights() const override { return !weights_.empty(); }
  bool can_recalibrate_batch_norm() const override { return true; }
  std::string fingerprint() const override { return fingerprint_; }
  std::string description() const override {
    return "native " + name_ + (weights_.empty() ? " (random weights only)" : " with weights " + weights_);
  }

 private:
  // Everything that shapes the architecture, except what the weights file decides.
  kgain::native::ArchitectureOptions architecture_options(const kgain::Options& options) const {
    kgain::native::ArchitectureOptions arch;
    arch.name = name_;
    arch.tf_same_padding = options.get_string("padding") == "tf_same";
    arch.tf_input_range = options.get_string("input_range", arch.tf_same_padding ? "tf" : "imagenet") == "tf";
    arch.width = options.get_double("width");
    if (arch.width != 1.0 && name_ != "mobilenet_v1")
      throw options.error("width", "a width multiplier is an option of mobilenet_v1 only");
    arch.num_classes = options.get_int("num_classes", 1000);
    const std::vector<std::pair<const char*, std::int64_t*>> vit_shape{{"patch_size", &arch.vit_patch},
                                                                       {"layers", &arch.vit_layers},
                                                                       {"heads", &arch.vit_heads},
                                                                       {"hidden_dim", &arch.vit_hidden},
                                                                       {"mlp_dim", &arch.vit_mlp}};
    for (const auto& [key, value] : vit_shape) {
      if (name_ != "vit") {
        if (options.has(key)) throw options.error(key, "describes the shape of architecture = \"vit\" only");
        continue;
      }
      if (!options.has(key)) throw options.error(key, "architecture = \"vit\" needs it, between 1 and 100000");
      *value = options.get_int(key, 0);
    }
    return arch;
  }

  // The weights file's tensors under torchvision's keys (empty without a file). For a ViT it also
  // sets the position grid from the file, and the norms' epsilon by the key format.
  std::map<std::string, at::Tensor> weights_file(const kgain::Options& options,
                                                 kgain::native::ArchitectureOptions& arch) const {
    const bool vit = name_ == "vit" || name_.rfind("vit_", 0) == 0;
    std::map<std::string, at::Tensor> state;
    auto format = kgain::native::KeyFormat::torchvision;
    if (!weights_.empty()) {
      if (!std::filesystem::is_regular_file(weights_))
        throw options.error("weights", "the weights file '" + weights_ + "' does not exist");
      state = read_weights(weights_);
      try {
        format = options.has("key_format") ? kgain::native::key_format_from_name(options.get_string("key_format", ""))
                                           : kgain::native::detect_key_format(state);
        state = kgain::native::to_torchvision_keys(std::move(state), format, vit ? "vit" : "");
      } catch (const std::invalid_argument& e) {
        throw options.error("key_format", "'" + weights_ + "': " + e.what());
      }
    } else if (options.has("key_format")) {
      throw options.error("key_format", "names the keys of a `weights` file, and there is none");
    }
    const double eps =
        options.get_double("layer_norm_eps", format == kgain::native::KeyFormat::huggingface ? 1e-12 : 1e-6);
    if (!vit) {
      if (options.has("layer_norm_eps")) throw options.error("layer_norm_eps", "is an option of the ViTs only");
      return state;
    }
    arch.layer_norm_eps = eps;
    if (const auto it = state.find("encoder.pos_embedding"); it != state.end() && it->second.dim() == 3) {
      const std::int64_t patches = it->second.size(1) - 1;
      const auto grid =
          static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<std::int64_t>(patches, 0)))));
      if (patches < 1 || grid * grid != patches)
        throw options.error("weights", "'" + weights_ + "': the position embedding has " +
                                           std::to_string(it->second.size(1)) +
                                           " entries, not a class token and a square grid of patches");
      arch.vit_grid = grid;
    }
    return state;
  }

  std::size_t find_unit(const std::string& tap) const {
    const auto& paths = prototype_.unit_paths;
    for (std::size_t i = 0; i < paths.size(); ++i)
      if (paths[i] == tap) return i;
    std::size_t last = paths.size();  // a stage: the last unit inside it
    for (std::size_t i = 0; i < paths.size(); ++i)
      if (paths[i].rfind(tap + ".", 0) == 0) last = i;
    return last;
  }

  std::string name_;
  std::string weights_;
  std::string init_;
  bool optimize_ = true;
  bool channels_last_;
  Architecture prototype_;
  std::int64_t native_input_size_ = 224;
  std::vector<std::size_t> tap_units_;
  std::vector<std::string> tap_names_;
  std::string fingerprint_;
  bool has_classifier_ = true;
};

// `kgain list`'s line, from the registered families (architectures.hpp).
const char* library_summary() {
  static const std::string summary = [] {
    std::string families;
    for (const auto& family : kgain::native::architecture_families())
      families += (families.empty() ? "" : ", ") + family;
    return families + " built with torchvision's names; weights from state dicts or safetensors";
  }();
  return summary.c_str();
}

}  // namespace

KGAIN_LIBRARY("native", kgain::make_plugin<NativeBackbone>("native", "1.0.0", library_summary()))
