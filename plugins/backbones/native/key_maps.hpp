// State-dict key names as the field ships them, mapped to torchvision's.
//
// torchvision, timm and Hugging Face name the same ViT parameters differently (and Hugging Face
// keeps q, k and v apart where torchvision stacks them). The native backbone maps a file's keys
// to torchvision's before loading, so one architecture loads all three.
// Threads: pure functions.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace kgain::native {

enum class KeyFormat { torchvision, timm, huggingface };

// "torchvision", "timm", "huggingface"; throws std::invalid_argument for another name.
KeyFormat key_format_from_name(const std::string& name);
std::string to_string(KeyFormat format);

// timm when a key starts with "blocks." or is "cls_token" / "pos_embed"; Hugging Face when one
// holds "embeddings.patch_embeddings."; else torchvision.
KeyFormat detect_key_format(const std::map<std::string, at::Tensor>& state);

// The state dict with torchvision's keys. `family` is the architecture's ("vit", or "" for a
// CNN): timm and Hugging Face maps exist for ViTs only (std::invalid_argument otherwise). Keys the
// map does not know stay as they are, so the loader reports them as unexpected; Hugging Face's
// pooler (a dense + tanh over the class token, outside the trunk) is dropped. torchvision's own
// legacy MLP names (mlp.linear_1 / linear_2, before torchvision 0.13) become mlp.0 / mlp.3.
std::map<std::string, at::Tensor> to_torchvision_keys(std::map<std::string, at::Tensor> state, KeyFormat format,
                                                      const std::string& family);

}  // namespace kgain::native
