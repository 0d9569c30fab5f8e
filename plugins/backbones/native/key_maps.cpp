#include "key_maps.hpp"

#include <stdexcept>
#include <vector>

#include <ATen/ATen.h>

namespace kgain::native {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// Replaces `from` (a prefix of `key`) by `to`; false when `key` does not start with `from`.
bool replace_prefix(std::string& key, const std::string& from, const std::string& to) {
  if (!starts_with(key, from)) return false;
  key = to + key.substr(from.size());
  return true;
}

// "blocks.7.norm1.weight" with prefix "blocks." -> index "7", rest "norm1.weight"; false when the
// key is not "<prefix><digits>.<rest>".
bool split_block(const std::string& key, const std::string& prefix, std::string& index, std::string& rest) {
  if (!starts_with(key, prefix)) return false;
  const std::size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return false;
  index = key.substr(prefix.size(), dot - prefix.size());
  for (char c : index)
    if (c < '0' || c > '9') return false;
  rest = key.substr(dot + 1);
  return true;
}

using Renames = std::vector<std::pair<std::string, std::string>>;

// One source's ViT names: whole keys, key prefixes outside the blocks, and, inside block i
// (`<block_prefix><i>.`), prefixes of the rest; everything maps to torchvision's names.
struct VitNames {
  Renames keys, prefixes;
  std::string block_prefix;
  Renames block_parts;
};

// timm's VisionTransformer (patch_embed.proj, blocks.i.norm1 / attn.qkv / attn.proj / norm2 /
// mlp.fc1 / mlp.fc2, norm, head).
const VitNames timm_names{{{"cls_token", "class_token"}, {"pos_embed", "encoder.pos_embedding"}},
                          {{"patch_embed.proj.", "conv_proj."}, {"norm.", "encoder.ln."}, {"head.", "heads.head."}},
                          "blocks.",
                          {{"norm1.", "ln_1."},
                           {"norm2.", "ln_2."},
                           {"attn.proj.", "self_attention.out_proj."},
                           {"mlp.fc1.", "mlp.0."},
                           {"mlp.fc2.", "mlp.3."},
                           {"attn.qkv.weight", "self_attention.in_proj_weight"},
                           {"attn.qkv.bias", "self_attention.in_proj_bias"}}};

// Hugging Face's ViTModel, "vit." already stripped. q, k and v keep names of their own
// (".q.weight" ...) and are stacked afterwards (stack_qkv).
const VitNames huggingface_names{
    {{"embeddings.cls_token", "class_token"}, {"embeddings.position_embeddings", "encoder.pos_embedding"}},
    {{"embeddings.patch_embeddings.projection.", "conv_proj."},
     {"layernorm.", "encoder.ln."},
     {"classifier.", "heads.head."}},
    "encoder.layer.",
    {{"layernorm_before.", "ln_1."},
     {"layernorm_after.", "ln_2."},
     {"attention.output.dense.", "self_attention.out_proj."},
     {"intermediate.dense.", "mlp.0."},
     {"output.dense.", "mlp.3."},
     {"attention.attention.query.", "self_attention.q."},
     {"attention.attention.key.", "self_attention.k."},
     {"attention.attention.value.", "self_attention.v."}}};

// `key` under torchvision's name, or unchanged when `names` does not know it.
std::string torchvision_key(const std::string& key, const VitNames& names) {
  for (const auto& [from, to] : names.keys)
    if (key == from) return to;
  std::string out = key, index, rest;
  for (const auto& [from, to] : names.prefixes)
    if (replace_prefix(out, from, to)) return out;
  if (!split_block(key, names.block_prefix, index, rest)) return key;
  for (const auto& [from, to] : names.block_parts)
    if (replace_prefix(rest, from, to)) return "encoder.layers.encoder_layer_" + index + "." + rest;
  return key;
}

// Stacks every block's separate q, k, v (weight and bias) into torchvision's in_proj_*; a block
// with only some of them keeps them under their names, so the loader reports them.
void stack_qkv(std::map<std::string, at::Tensor>& state) {
  std::vector<std::string> prefixes;
  for (const auto& [key, tensor] : state)
    if (key.size() > 10 && key.compare(key.size() - 9, 9, ".q.weight") == 0)
      prefixes.push_back(key.substr(0, key.size() - 9));
  for (const auto& p : prefixes) {
    for (const std::string kind : {"weight", "bias"}) {
      const std::string q = p + ".q." + kind, k = p + ".k." + kind, v = p + ".v." + kind;
      if (!state.count(q) || !state.count(k) || !state.count(v) || state.count(p + ".in_proj_" + kind)) continue;
      const auto &tq = state[q], &tk = state[k], &tv = state[v];
      if (tq.dim() < 1 || tq.sizes() != tk.sizes() || tq.sizes() != tv.sizes() ||
          tq.scalar_type() != tk.scalar_type() || tq.scalar_type() != tv.scalar_type())
        continue;  // left apart: reported as unexpected
      state[p + ".in_proj_" + kind] = at::cat({tq, tk, tv}, 0);
      state.erase(q);
      state.erase(k);
      state.erase(v);
    }
  }
}

// out[to] = tensor, refusing a second key that maps to the same name (a file holding both
// "cls_token" and "class_token" must not load one of them silently).
void insert_unique(std::map<std::string, at::Tensor>& out, std::map<std::string, std::string>& source,
                   const std::string& to, const std::string& from, const at::Tensor& tensor) {
  if (const auto it = source.find(to); it != source.end())
    throw std::invalid_argument("the weights file holds both '" + it->second + "' and '" + from +
                                "', which name the same parameter '" + to + "'");
  source[to] = from;
  out[to] = tensor;
}

}  // namespace

KeyFormat key_format_from_name(const std::string& name) {
  if (name == "torchvision") return KeyFormat::torchvision;
  if (name == "timm") return KeyFormat::timm;
  if (name == "huggingface") return KeyFormat::huggingface;
  throw std::invalid_argument("unknown key format '" + name +
                              "': use \"torchvision\", \"timm\" or \"huggingface\" (or leave it out to detect it)");
}

std::string to_string(KeyFormat format) {
  switch (format) {
    case KeyFormat::torchvision: return "torchvision";
    case KeyFormat::timm: return "timm";
    case KeyFormat::huggingface: return "huggingface";
  }
  return "?";
}

KeyFormat detect_key_format(const std::map<std::string, at::Tensor>& state) {
  for (const auto& [key, tensor] : state) {
    if (starts_with(key, "blocks.") || key == "cls_token" || key == "pos_embed") return KeyFormat::timm;
    if (key.find("embeddings.patch_embeddings.") != std::string::npos) return KeyFormat::huggingface;
  }
  return KeyFormat::torchvision;
}

std::map<std::string, at::Tensor> to_torchvision_keys(std::map<std::string, at::Tensor> state, KeyFormat format,
                                                      const std::string& family) {
  std::map<std::string, at::Tensor> out;
  std::map<std::string, std::string> source;  // mapped name -> the file's key
  if (format == KeyFormat::torchvision) {
    for (auto& [key, tensor] : state) {
      std::string k = key;
      for (const auto& [from, to] :
           {std::pair<std::string, std::string>{".mlp.linear_1.", ".mlp.0."}, {".mlp.linear_2.", ".mlp.3."}})
        if (const auto at = k.find(from); family == "vit" && at != std::string::npos) k.replace(at, from.size(), to);
      insert_unique(out, source, k, key, tensor);
    }
    return out;
  }
  if (family != "vit")
    throw std::invalid_argument("key_format = \"" + to_string(format) +
                                "\" maps ViT weights only; this architecture takes torchvision's names");
  for (auto& [key, tensor] : state) {
    if (format == KeyFormat::timm) {
      insert_unique(out, source, torchvision_key(key, timm_names), key, tensor);
      continue;
    }
    std::string k = key;
    replace_prefix(k, "vit.", "");
    if (starts_with(k, "pooler.")) continue;
    insert_unique(out, source, torchvision_key(k, huggingface_names), key, tensor);
  }
  if (format == KeyFormat::huggingface) stack_qkv(out);
  return out;
}

}  // namespace kgain::native
