// Vision transformers with torchvision's names: ViT (torchvision's five configurations, timm's
// ViT-S/16 and ViT-Ti/16, or any shape as "vit") and Swin-T/S/B.
#include <map>
#include <stdexcept>

#include "architectures.hpp"
#include "builder.hpp"

namespace kgain::native {
namespace {

struct VitShape {
  std::int64_t patch, layers, heads, hidden, mlp;
};

// torchvision's vit_* builders; timm's vit_small/tiny_patch16 (ViT-S/16: 384 wide, 6 heads;
// ViT-Ti/16: 192 wide, 3 heads).
const std::map<std::string, VitShape>& named_vits() {
  static const std::map<std::string, VitShape> shapes{
      {"vit_b_16", {16, 12, 12, 768, 3072}},  {"vit_b_32", {32, 12, 12, 768, 3072}},
      {"vit_l_16", {16, 24, 16, 1024, 4096}}, {"vit_l_32", {32, 24, 16, 1024, 4096}},
      {"vit_h_14", {14, 32, 16, 1280, 5120}}, {"vit_s_16", {16, 12, 6, 384, 1536}},
      {"vit_ti_16", {16, 12, 3, 192, 768}}};
  return shapes;
}

// The embedding unit: patches (conv_proj), the class token in front, plus the position
// embedding, resampled as timm does (bicubic, antialiased, class token's entry kept) when the
// input's patch grid differs from the native one. Its parameters keep torchvision's keys through
// Architecture::state_dict_keys.
Module vit_embedding(Builder& b, const VitShape& s, std::int64_t grid) {
  Module m = b.make("VitEmbedding");
  m.register_module("conv_proj", b.conv(3, s.hidden, s.patch, s.patch, 1, /*bias=*/true, false, /*padding=*/0));
  m.register_parameter("class_token", torch::zeros({1, 1, s.hidden}), false);
  m.register_parameter("pos_embedding", torch::zeros({1, grid * grid + 1, s.hidden}), false);
  const std::string g = std::to_string(grid), d = std::to_string(s.hidden);
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    x = self.conv_proj.forward(x)\n"
      "    n = x.size(0)\n"
      "    gh = x.size(2)\n"
      "    gw = x.size(3)\n"
      "    x = torch.cat([self.class_token.expand([n, -1, -1]), x.flatten(2).transpose(1, 2)], 1)\n"
      "    pos = self.pos_embedding\n"
      "    if gh != " +
      g + " or gw != " + g +
      ":\n"
      "        grid = pos.narrow(1, 1, " +
      g + " * " + g + ").reshape([1, " + g + ", " + g + ", " + d +
      "]).permute([0, 3, 1, 2])\n"
      "        grid = torch._upsample_bicubic2d_aa(grid, [gh, gw], False, None)\n"
      "        pos = torch.cat([pos.narrow(1, 0, 1), grid.permute([0, 2, 3, 1]).reshape([1, gh * gw, " +
      d +
      "])], 1)\n"
      "    return x + pos\n");
  return m;
}

// nn.MultiheadAttention (batch first, self-attention) written out with torch.matmul, so that
// the MAC count sees its two products. Parameters: in_proj_weight/bias (q, k, v stacked),
// out_proj.
Module self_attention(Builder& b, std::int64_t hidden, std::int64_t heads) {
  Module m = b.make("MultiheadAttention");
  m.register_parameter("in_proj_weight", torch::empty({3 * hidden, hidden}), false);
  m.register_parameter("in_proj_bias", torch::zeros({3 * hidden}), false);
  m.register_module("out_proj", b.linear(hidden, hidden));
  const std::string h = std::to_string(heads), hd = std::to_string(hidden / heads), w = std::to_string(hidden);
  std::ostringstream scale;
  scale.precision(17);
  scale << 1.0 / std::sqrt(static_cast<double>(hidden / heads));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    n = x.size(0)\n"
      "    t = x.size(1)\n"
      "    qkv = torch.linear(x, self.in_proj_weight, self.in_proj_bias).reshape([n, t, 3, " +
      h + ", " + hd +
      "]).permute([2, 0, 3, 1, 4])\n"
      "    q = qkv[0] * " +
      scale.str() +
      "\n"
      "    attention = torch.softmax(torch.matmul(q, qkv[1].transpose(-2, -1)), -1)\n"
      "    x = torch.matmul(attention, qkv[2]).transpose(1, 2).reshape([n, t, " +
      w +
      "])\n"
      "    return self.out_proj.forward(x)\n");
  return m;
}

// torchvision's MLP block (ViT and Swin): 0 linear, 1 GELU, 2 dropout, 3 linear, 4 dropout.
Module mlp(Builder& b, std::int64_t width, std::int64_t hidden) {
  Module m = b.make("MLP");
  m.register_module("0", b.linear(width, hidden));
  m.register_module("3", b.linear(hidden, width));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    return getattr(self, \"3\").forward(torch.gelu(getattr(self, \"0\").forward(x)))\n");
  return m;
}

Module vit_block(Builder& b, const VitShape& s, double eps) {
  Module m = b.make("EncoderBlock");
  m.register_module("ln_1", b.layer_norm(s.hidden, eps));
  m.register_module("self_attention", self_attention(b, s.hidden, s.heads));
  m.register_module("ln_2", b.layer_norm(s.hidden, eps));
  m.register_module("mlp", mlp(b, s.hidden, s.mlp));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    x = x + self.self_attention.forward(self.ln_1.forward(x))\n"
      "    return x + self.mlp.forward(self.ln_2.forward(x))\n");
  return m;
}

// torchvision's VisionTransformer.__init__ rules, in parameter order.
void initialise_vit(Module& root, at::Generator& g) {
  for (const auto& p : root.named_parameters(true)) {
    const std::string& name = p.name;
    const auto ends = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (name == "embed.conv_proj.weight")
      init::trunc_normal(p.value, std::sqrt(1.0 / static_cast<double>(p.value[0].numel())), g);
    else if (name == "embed.pos_embedding")
      init::normal(p.value, 0.02, g);
    else if (ends("in_proj_weight"))
      init::xavier_uniform(p.value, g);
    else if (ends("out_proj.weight"))
      init::default_uniform(p.value, p.value.size(1), g);
    else if (name.find(".mlp.") != std::string::npos && ends(".weight"))
      init::xavier_uniform(p.value, g);
    else if (name.find(".mlp.") != std::string::npos && ends(".bias"))
      init::normal(p.value, 1e-6, g);
    else if ((ends("ln_1.weight") || ends("ln_2.weight") || name == "encoder.ln.weight"))
      init::constant(p.value, 1.0);
    else
      init::constant(p.value, 0.0);  // biases, class token, the head (zeros in torchvision)
  }
}

Architecture vit(const VitShape& s, std::int64_t grid, double eps, std::int64_t classes) {
  if (s.patch < 1 || s.layers < 1 || s.heads < 1 || s.hidden < 1 || s.mlp < 1 || s.hidden % s.heads != 0)
    throw std::invalid_argument(
        "a ViT needs patch_size, layers, heads, hidden_dim and mlp_dim >= 1, with hidden_dim a multiple of heads");
  if (grid < 1 || grid > 1024) throw std::invalid_argument("the ViT's position grid must be 1 to 1024 patches a side");
  Builder b(false, 1e-5);
  Architecture a;
  a.family = "vit";
  a.root = b.make("VisionTransformer");
  a.root.register_module("embed", vit_embedding(b, s, grid));
  Module encoder = b.make("Encoder");
  Module layers = b.make("Layers");
  a.unit_paths = {"embed"};
  for (std::int64_t i = 0; i < s.layers; ++i) {
    const std::string name = "encoder_layer_" + std::to_string(i);
    layers.register_module(name, vit_block(b, s, eps));
    a.unit_paths.push_back("encoder.layers." + name);
  }
  a.default_taps.assign(a.unit_paths.begin() + 1, a.unit_paths.end());
  encoder.register_module("layers", layers);
  encoder.register_module("ln", b.layer_norm(s.hidden, eps));
  a.unit_paths.push_back("encoder.ln");
  a.root.register_module("encoder", encoder);
  Module heads = b.make("Heads");
  heads.register_module("head", b.linear(s.hidden, classes));
  heads.define("def forward(self, x: Tensor) -> Tensor:\n    return self.head.forward(x)\n");
  a.root.register_module("heads", heads);
  a.unit_layouts.assign(a.unit_paths.size(), trunk::TapLayout::tokens);
  a.state_dict_keys = {{"embed.conv_proj.weight", "conv_proj.weight"},
                       {"embed.conv_proj.bias", "conv_proj.bias"},
                       {"embed.class_token", "class_token"},
                       {"embed.pos_embedding", "encoder.pos_embedding"}};
  a.native_input_size = grid * s.patch;
  a.initialise = initialise_vit;
  a.optimize_by_default = false;
  finish(a, "    return self.heads.forward(x.select(1, 0))\n");
  return a;
}

// ---- Swin ------------------------------------------------------------------------------------

struct SwinShape {
  std::int64_t embed;
  std::vector<int> depths;
  std::vector<std::int64_t> heads;
};

const std::map<std::string, SwinShape>& named_swins() {
  static const std::map<std::string, SwinShape> shapes{{"swin_t", {96, {2, 2, 6, 2}, {3, 6, 12, 24}}},
                                                       {"swin_s", {96, {2, 2, 18, 2}, {3, 6, 12, 24}}},
                                                       {"swin_b", {128, {2, 2, 18, 2}, {4, 8, 16, 32}}}};
  return shapes;
}

constexpr std::int64_t swin_window = 7;

// torchvision's relative_position_index for a window x window window (a persistent buffer).
at::Tensor relative_position_index(std::int64_t window) {
  const at::Tensor coords =
      torch::stack(torch::meshgrid({torch::arange(window), torch::arange(window)}, "ij")).flatten(1);
  at::Tensor relative = (coords.unsqueeze(2) - coords.unsqueeze(1)).permute({1, 2, 0}).contiguous();
  relative.select(2, 0).add_(window - 1).mul_(2 * window - 1);
  relative.select(2, 1).add_(window - 1);
  return relative.sum(-1).flatten();
}

// ShiftedWindowAttention (torchvision's shifted_window_attention, V1): windows of 7 x 7 tokens,
// cyclically shifted by `shift` with torchvision's mask, relative position bias per head.
Module window_attention(Builder& b, std::int64_t dim, std::int64_t heads, std::int64_t shift) {
  Module m = b.make("ShiftedWindowAttention");
  m.register_module("qkv", b.linear(dim, 3 * dim));
  m.register_module("proj", b.linear(dim, dim));
  const std::int64_t w = swin_window;
  m.register_parameter("relative_position_bias_table", torch::zeros({(2 * w - 1) * (2 * w - 1), heads}), false);
  m.register_buffer("relative_position_index", relative_position_index(w));
  std::ostringstream scale;
  scale.precision(17);
  scale << 1.0 / std::sqrt(static_cast<double>(dim / heads));
  const std::string W = std::to_string(w), S = std::to_string(shift), H = std::to_string(heads),
                    C = std::to_string(dim), D = std::to_string(dim / heads);
  m.define(
      "def forward(self, input: Tensor) -> Tensor:\n"
      "    B = input.size(0)\n    h = input.size(1)\n    w = input.size(2)\n"
      "    x = torch.constant_pad_nd(input, [0, 0, 0, (" +
      W + " - w % " + W + ") % " + W + ", 0, (" + W + " - h % " + W + ") % " + W +
      "], 0.0)\n"
      "    ph = x.size(1)\n    pw = x.size(2)\n"
      "    sh = " +
      S + "\n    sw = " + S +
      "\n"
      "    if " +
      W +
      " >= ph:\n        sh = 0\n"
      "    if " +
      W +
      " >= pw:\n        sw = 0\n"
      "    if sh + sw > 0:\n        x = torch.roll(x, [-sh, -sw], [1, 2])\n"
      "    nw = (ph // " +
      W + ") * (pw // " + W +
      ")\n"
      "    x = x.view([B, ph // " +
      W + ", " + W + ", pw // " + W + ", " + W + ", " + C +
      "]).permute([0, 1, 3, 2, 4, 5])"
      ".reshape([B * nw, " +
      W + " * " + W + ", " + C +
      "])\n"
      "    qkv = self.qkv.forward(x).reshape([x.size(0), x.size(1), 3, " +
      H + ", " + D +
      "]).permute([2, 0, 3, 1, 4])\n"
      "    attn = torch.matmul(qkv[0] * " +
      scale.str() +
      ", qkv[1].transpose(-2, -1))\n"
      "    bias = self.relative_position_bias_table[self.relative_position_index].view([" +
      W + " * " + W + ", " + W + " * " + W +
      ", -1])\n"
      "    attn = attn + bias.permute([2, 0, 1]).contiguous().unsqueeze(0)\n"
      "    if sh + sw > 0:\n"
      "        mask = x.new_zeros([ph, pw])\n"
      "        hs = [0, ph - " +
      W +
      ", ph - sh, ph]\n"
      "        ws = [0, pw - " +
      W +
      ", pw - sw, pw]\n"
      "        count = 0\n"
      "        for i in range(3):\n"
      "            for j in range(3):\n"
      "                mask[hs[i]:hs[i + 1], ws[j]:ws[j + 1]] = float(count)\n"
      "                count += 1\n"
      "        mask = mask.view([ph // " +
      W + ", " + W + ", pw // " + W + ", " + W + "]).permute([0, 2, 1, 3]).reshape([nw, " + W + " * " + W +
      "])\n"
      "        mask = mask.unsqueeze(1) - mask.unsqueeze(2)\n"
      "        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)\n"
      "        attn = attn.view([x.size(0) // nw, nw, " +
      H +
      ", x.size(1), x.size(1)]) + mask.unsqueeze(1).unsqueeze(0)\n"
      "        attn = attn.view([-1, " +
      H +
      ", x.size(1), x.size(1)])\n"
      "    attn = torch.softmax(attn, -1)\n"
      "    x = torch.matmul(attn, qkv[2]).transpose(1, 2).reshape([x.size(0), x.size(1), " +
      C +
      "])\n"
      "    x = self.proj.forward(x)\n"
      "    x = x.view([B, ph // " +
      W + ", pw // " + W + ", " + W + ", " + W + ", " + C + "]).permute([0, 1, 3, 2, 4, 5]).reshape([B, ph, pw, " + C +
      "])\n"
      "    if sh + sw > 0:\n        x = torch.roll(x, [sh, sw], [1, 2])\n"
      "    return x[:, :h, :w, :].contiguous()\n");
  return m;
}

Module swin_block(Builder& b, std::int64_t dim, std::int64_t heads, std::int64_t shift) {
  Module m = b.make("SwinTransformerBlock");
  m.register_module("norm1", b.layer_norm(dim, 1e-5));
  m.register_module("attn", window_attention(b, dim, heads, shift));
  m.register_module("norm2", b.layer_norm(dim, 1e-5));
  m.register_module("mlp", mlp(b, dim, 4 * dim));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    x = x + self.attn.forward(self.norm1.forward(x))\n"
      "    return x + self.mlp.forward(self.norm2.forward(x))\n");
  return m;
}

// PatchMerging: 2 x 2 neighbours concatenated (padded to even sides), norm, linear to 2C.
Module patch_merging(Builder& b, std::int64_t dim) {
  Module m = b.make("PatchMerging");
  m.register_module("reduction", b.linear(4 * dim, 2 * dim, /*bias=*/false));
  m.register_module("norm", b.layer_norm(4 * dim, 1e-5));
  m.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    x = torch.constant_pad_nd(x, [0, 0, 0, x.size(2) % 2, 0, x.size(1) % 2], 0.0)\n"
      "    x = torch.cat([x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :], x[:, 0::2, 1::2, :], x[:, 1::2, 1::2, :]], -1)\n"
      "    return self.reduction.forward(self.norm.forward(x))\n");
  return m;
}

// torchvision: every linear weight trunc_normal(std 0.02), bias 0; the relative position bias
// tables trunc_normal(0.02); norms 1 / 0; the patch embedding keeps nn.Conv2d's default.
void initialise_swin(Module& root, at::Generator& g) {
  for (const auto& p : root.named_parameters(true)) {
    const std::string leaf = p.name.substr(p.name.rfind('.') + 1);
    constexpr std::int64_t stem_fan_in = 3 * 4 * 4;  // the 4 x 4 patch embedding
    if (p.name == "features.0.0.weight" || p.name == "features.0.0.bias")
      init::default_uniform(p.value, stem_fan_in, g);
    else if (leaf == "relative_position_bias_table" || (leaf == "weight" && p.value.dim() == 2))
      init::trunc_normal(p.value, 0.02, g);
    else
      init::constant(p.value, leaf == "weight" ? 1.0 : 0.0);
  }
}

Architecture swin(const SwinShape& s, std::int64_t classes) {
  Builder b(false, 1e-5);
  Architecture a;
  a.family = "swin";
  a.root = b.make("SwinTransformer");
  Module stem = b.make("PatchEmbedding");  // 0 conv, 1 permute, 2 norm
  stem.register_module("0", b.conv(3, s.embed, 4, 4, 1, /*bias=*/true, false, 0));
  stem.register_module("2", b.layer_norm(s.embed, 1e-5));
  stem.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    return getattr(self, \"2\").forward(getattr(self, \"0\").forward(x).permute([0, 2, 3, 1]))\n");
  std::vector<Module> features{stem};
  a.unit_paths = {"features.0"};
  std::int64_t dim = s.embed;
  for (std::size_t stage = 0; stage < s.depths.size(); ++stage) {
    std::vector<Module> blocks;
    for (int i = 0; i < s.depths[stage]; ++i) {
      blocks.push_back(swin_block(b, dim, s.heads[stage], i % 2 == 0 ? 0 : swin_window / 2));
      a.unit_paths.push_back("features." + std::to_string(features.size()) + "." + std::to_string(i));
      a.default_taps.push_back(a.unit_paths.back());
    }
    features.push_back(b.sequential(blocks));
    if (stage + 1 == s.depths.size()) break;
    features.push_back(patch_merging(b, dim));
    a.unit_paths.push_back("features." + std::to_string(features.size() - 1));
    dim *= 2;
  }
  a.root.register_module("features", b.sequential(features));
  a.root.register_module("norm", b.layer_norm(dim, 1e-5));
  a.unit_paths.push_back("norm");
  a.root.register_module("head", b.linear(dim, classes));
  a.unit_layouts.assign(a.unit_paths.size(), trunk::TapLayout::nhwc);
  a.initialise = initialise_swin;
  a.optimize_by_default = false;
  finish(
      a,
      "    return self.head.forward(torch.flatten(torch.adaptive_avg_pool2d(x.permute([0, 3, 1, 2]), [1, 1]), 1))\n");
  return a;
}

// Each named ViT and Swin, and "vit" shaped by its options, registered by name (architectures.hpp).
Architecture build_vit(const ArchitectureOptions& o, VitShape s) {
  const std::int64_t grid = o.vit_grid > 0 ? o.vit_grid : (s.patch > 0 ? 224 / s.patch : 0);
  return vit(s, grid, o.layer_norm_eps, o.num_classes);
}
const ArchitectureRegistrations registered KGAIN_NATIVE_REGISTRATIONS{[] {
  for (const auto& [name, shape] : named_vits())
    register_architecture(name, "ViT", [shape = shape](const ArchitectureOptions& o) { return build_vit(o, shape); });
  register_architecture("vit", "ViT", [](const ArchitectureOptions& o) {
    return build_vit(o, {o.vit_patch, o.vit_layers, o.vit_heads, o.vit_hidden, o.vit_mlp});
  });
  for (const auto& [name, shape] : named_swins())
    register_architecture(name, "Swin",
                          [shape = shape](const ArchitectureOptions& o) { return swin(shape, o.num_classes); });
}};

}  // namespace

}  // namespace kgain::native
