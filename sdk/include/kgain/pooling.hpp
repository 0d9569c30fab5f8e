// Pooling a tap's activation into a feature vector, for a backbone that runs its own forward
// pass (an out-of-tree backbone in LibTorch's C++ frontend, say; examples/tiny_backbone). The
// bundled backbones compute the same inside their TorchScript graphs, and the core stores what
// Network::extract returns: one float32 row per image, feature_dim x pooled_parts(pooling) long.
// Threads: pure functions; call them from any thread.
#pragma once

#include <stdexcept>

#include <ATen/ATen.h>

#include "kgain/backbone.hpp"

namespace kgain {

// `activation`: [n, c, h, w] for a feature map (channels first), [n, t, d] for tokens (class
// token first), [n, d] for a vector (returned as it is). Throws std::invalid_argument when the
// pooling does not fit the form, or the rank does not fit the form.
inline at::Tensor pool_activation(const at::Tensor& activation, TapForm form, Pooling pooling) {
  if (!pooling_fits(pooling, form))
    throw std::invalid_argument(form == TapForm::tokens ? "token taps take pooling cls, mean or cls_mean"
                                                        : "feature-map taps take pooling avg, max or avgmax");
  const at::Tensor& x = activation;
  if (form == TapForm::vector) {
    if (x.dim() != 2) throw std::invalid_argument("a vector tap must be [n, d]");
    return x.to(at::kFloat).contiguous();
  }
  if (x.dim() != (form == TapForm::tokens ? 3 : 4))
    throw std::invalid_argument(form == TapForm::tokens ? "a token tap must be [n, tokens, d]"
                                                        : "a feature-map tap must be [n, c, h, w]");
  at::Tensor out;
  switch (pooling) {
    case Pooling::avg: out = x.mean({2, 3}); break;
    case Pooling::max: out = x.amax({2, 3}); break;
    case Pooling::avgmax: out = at::cat({x.mean({2, 3}), x.amax({2, 3})}, 1); break;
    case Pooling::cls: out = x.select(1, 0); break;
    case Pooling::mean: out = x.narrow(1, 1, x.size(1) - 1).mean(1); break;
    case Pooling::cls_mean: out = at::cat({x.select(1, 0), x.narrow(1, 1, x.size(1) - 1).mean(1)}, 1); break;
  }
  return out.to(at::kFloat).contiguous();
}

}  // namespace kgain
