// Example: a backbone plugin, built out of tree against the installed kgain SDK.
//
// A small CNN written with LibTorch's C++ frontend: `blocks` blocks of 3x3 convolution (stride
// 2), batch norm and ReLU, each block a tap. It has no pretrained weights, so a study scores its
// random variants (one per seed, drawn from the seed alone) and reports no gain: a baseline for
// "what does an untrained network of this size give". A backbone with weights would load them
// in its constructor and return true from has_pretrained_weights().
//
// What a backbone needs from the SDK: kgain/backbone.hpp (the interface), kgain/pooling.hpp
// (pool_activation: the same poolings as the bundled backbones), kgain/plugin.hpp (options and
// registration). docs/plugins.md walks through this file.
//
// Options: `declared_options` below (`kgain list --options tiny`), e.g.
//   [backbone]
//   plugin = "tiny"
//   channels = [16, 32, 64]
#include <sstream>

#include <torch/torch.h>

#include <kgain/backbone.hpp>
#include <kgain/plugin.hpp>
#include <kgain/pooling.hpp>

namespace {

torch::nn::Sequential block(std::int64_t in, std::int64_t out) {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(2).padding(1).bias(false)),
                               torch::nn::BatchNorm2d(out), torch::nn::ReLU());
}

// The network of one variant. Threads: one thread at a time (Backbone's rule).
class TinyNetwork : public kgain::Network {
 public:
  TinyNetwork(std::vector<torch::nn::Sequential> blocks, kgain::Pooling pooling)
      : blocks_(std::move(blocks)), pooling_(pooling) {}

  std::vector<at::Tensor> extract(const at::Tensor& images) override {
    c10::InferenceMode guard;
    std::vector<at::Tensor> features;
    at::Tensor x = images;
    for (auto& b : blocks_) {
      x = b->forward(x);
      features.push_back(kgain::pool_activation(x, kgain::TapForm::feature_map, pooling_));
    }
    return features;
  }
  at::Tensor classify(const at::Tensor&) override { return {}; }  // no classifier head

 private:
  std::vector<torch::nn::Sequential> blocks_;
  kgain::Pooling pooling_;
};

class TinyBackbone : public kgain::Backbone {
 public:
  static constexpr std::array declared_options{
      kgain::option::integers("channels", "[16, 32, 64]", "output channels of each block (1 to 8 blocks)")
          .between(1, 4096),
      kgain::option::string("init", "\"kaiming\"", "random weights: `kaiming` (normal, fan-out) or `uniform`")
          .one_of("kaiming|uniform"),
  };

  explicit TinyBackbone(const kgain::Options& options) : init_(options.get_string("init")) {
    for (const auto& c : options.get_int_list("channels")) channels_.push_back(c);
    // What a declaration cannot say (the list's length) is checked by hand, with the place.
    if (channels_.empty() || channels_.size() > 8) throw options.error("channels", "needs 1 to 8 blocks");
  }

  std::int64_t native_input_size() const override { return 224; }
  std::vector<std::string> taps() const override {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < channels_.size(); ++i) names.push_back("block" + std::to_string(i + 1));
    return names;
  }

  // Shapes from a forward pass on zeros; parameters and MACs counted from the layers' sizes.
  std::vector<kgain::TapInfo> inspect(std::int64_t input_size) override {
    auto blocks = build(0);
    std::vector<kgain::TapInfo> out;
    at::Tensor x = torch::zeros({1, 3, input_size, input_size});
    std::int64_t parameters = 0, macs = 0, in = 3;
    c10::InferenceMode guard;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      x = blocks[i]->forward(x);
      for (const auto& p : blocks[i]->parameters()) parameters += p.numel();
      macs += x.numel() * in * 9;  // every output element: in x 3 x 3 multiply-accumulates
      in = channels_[i];
      kgain::TapInfo info;
      info.name = "block" + std::to_string(i + 1);
      info.shape.assign(x.sizes().begin() + 1, x.sizes().end());
      info.feature_dim = x.size(1);
      info.form = kgain::TapForm::feature_map;
      info.parameters = parameters;
      info.macs = macs;
      out.push_back(info);
    }
    return out;
  }

  std::unique_ptr<kgain::Network> instantiate(const kgain::Variant& variant, kgain::Pooling pooling) override {
    if (variant.kind != kgain::Variant::Kind::random)
      throw std::runtime_error("the tiny backbone has no pretrained weights");
    if (!kgain::pooling_fits(pooling, kgain::TapForm::feature_map))
      throw std::invalid_argument("the tiny backbone's taps are feature maps: use pooling avg, max or avgmax");
    return std::make_unique<TinyNetwork>(build(variant.seed), pooling);
  }

  std::string fingerprint() const override {  // everything that changes the features
    std::ostringstream out;
    out << "tiny:" << init_;
    for (auto c : channels_) out << ":" << c;
    return out.str();
  }
  std::string description() const override {
    return "tiny CNN (" + std::to_string(channels_.size()) + " blocks, random weights)";
  }
  bool has_pretrained_weights() const override { return false; }
  bool can_recalibrate_batch_norm() const override { return false; }

 private:
  // The blocks with weights drawn from `seed` alone (a generator of its own: no global state).
  std::vector<torch::nn::Sequential> build(std::uint64_t seed) const {
    auto generator = at::detail::createCPUGenerator(seed);
    std::vector<torch::nn::Sequential> blocks;
    std::int64_t in = 3;
    torch::NoGradGuard no_grad;
    for (auto c : channels_) {
      blocks.push_back(block(in, c));
      auto weight = blocks.back()->named_parameters()["0.weight"];
      if (init_ == "kaiming")
        weight.normal_(0.0, std::sqrt(2.0 / static_cast<double>(c * 9)), generator);
      else
        weight.uniform_(-1.0 / std::sqrt(static_cast<double>(in * 9)), 1.0 / std::sqrt(static_cast<double>(in * 9)),
                        generator);
      blocks.back()->eval();
      in = c;
    }
    return blocks;
  }

  std::string init_;
  std::vector<std::int64_t> channels_;
};

}  // namespace

KGAIN_LIBRARY("example_tiny_backbone",
              kgain::make_plugin<TinyBackbone>("tiny", "1.0.0",
                                               "a small random-weight CNN, each block a tap (example plugin)"))
