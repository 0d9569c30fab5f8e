// Backbone: a plugin that turns images into features at a list of tap points.
//
// A backbone is a network cut after each tap (a layer, named by its module path). The core
// asks for a Network per variant: the pretrained weights, or the same architecture with
// random weights drawn from a seed. One forward pass of a batch returns the pooled features of
// every tap, so a sweep over L taps costs one pass, not L.
// Threads: the core creates a backbone once per run and calls it, and the Networks it returns,
// from one thread at a time (LibTorch may use several threads inside a forward pass).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "kgain/plugin.hpp"

namespace kgain {

struct Variant {
  enum class Kind { pretrained, random } kind = Kind::pretrained;
  std::uint64_t seed = 0;  // used by Kind::random only
  // When defined: normalized float32 images [n, 3, h, w] on which the backbone re-estimates its
  // batch-norm running statistics (cumulative average over batches, no gradient) before the
  // network is frozen. The core sets it for random variants only, and only for a backbone whose
  // can_recalibrate_batch_norm() is true. Not part of name(): the core keys its cache on it.
  at::Tensor batch_norm_calibration;
  std::string name() const { return kind == Kind::pretrained ? "pretrained" : "random-" + std::to_string(seed); }
};

// How a tap's activation becomes a feature vector. Feature maps (CNNs: [c, h, w]; Swin: [h, w, c])
// pool over space: avg, max, or avgmax (both, concatenated). Token sequences (a vision
// transformer's [tokens, d], class token first) take the class token (cls), the mean of the patch
// tokens (mean, as timm's global_pool = "avg"), or both concatenated (cls_mean). A backbone
// refuses a pooling that does not fit its taps; the core checks first, from TapInfo::form.
enum class Pooling { avg, max, avgmax, cls, mean, cls_mean };

// What a tap's activation is, and so which poolings apply to it.
enum class TapForm { feature_map, tokens, vector };

// Whether `pooling` applies to a tap of `form` (a vector is taken as it is, whatever the pooling).
inline bool pooling_fits(Pooling pooling, TapForm form) {
  const bool for_tokens = pooling == Pooling::cls || pooling == Pooling::mean || pooling == Pooling::cls_mean;
  return form == TapForm::vector || (form == TapForm::tokens) == for_tokens;
}

// How many vectors of TapInfo::feature_dim a pooled feature concatenates (2 for avgmax, cls_mean).
inline int pooled_parts(Pooling pooling) { return pooling == Pooling::avgmax || pooling == Pooling::cls_mean ? 2 : 1; }

struct TapInfo {
  std::string name;                 // module path, e.g. "features.3"
  std::vector<std::int64_t> shape;  // activation shape for one image, e.g. {24, 56, 56}
  std::int64_t feature_dim = 0;     // channels (maps) or token width: the length of one pooled part
  TapForm form = TapForm::feature_map;
  std::int64_t parameters = 0;  // parameters of the network up to and including this tap
  std::int64_t macs = -1;       // multiply-accumulates per image up to this tap (convolutions,
                                // linear layers, attention's matrix products); -1 when unknown
};

class BOOST_SYMBOL_VISIBLE Network {
 public:
  virtual ~Network() = default;
  // Pooled features of every tap for a normalized float32 batch [n, 3, h, w]: one float32
  // tensor [n, feature_dim] per tap, in tap order.
  virtual std::vector<at::Tensor> extract(const at::Tensor& images) = 0;
  // The network's own output (ImageNet logits) for a batch; an undefined tensor when the
  // backbone has no classifier head.
  virtual at::Tensor classify(const at::Tensor& images) = 0;
};

class BOOST_SYMBOL_VISIBLE Backbone : public Plugin {
 public:
  // The side, in pixels, of the input the weights were trained at (0 when unknown).
  virtual std::int64_t native_input_size() const = 0;
  // Tap names in execution order.
  virtual std::vector<std::string> taps() const = 0;
  // Shapes, feature sizes and parameter counts of every tap for a square input of `input_size`.
  virtual std::vector<TapInfo> inspect(std::int64_t input_size) = 0;
  // The network with the variant's weights, ready for inference. Throws std::invalid_argument
  // when `pooling` does not fit a tap (see pooling_fits).
  virtual std::unique_ptr<Network> instantiate(const Variant& variant, Pooling pooling) = 0;
  // Identifies the weights (a file's content hash, a model name): part of the feature cache's
  // key, so that a changed weights file is never served stale features.
  virtual std::string fingerprint() const = 0;
  virtual std::string description() const = 0;
  // False for an architecture without a weights file: then only random variants exist, and the
  // core reports their scores without a gain.
  virtual bool has_pretrained_weights() const = 0;
  // Whether instantiate() honours Variant::batch_norm_calibration.
  virtual bool can_recalibrate_batch_norm() const = 0;
};

}  // namespace kgain
