// Reading a state dict written by Python's `torch.save(model.state_dict(), path)`.
//
// LibTorch 1.13's torch::pickle_load cannot read these files: its unpickler turns every
// collections.OrderedDict into None (it only expected one as a tensor's backward hooks) and
// then fails on the state dict's items (pytorch/pytorch#100741, fixed after 2.5). This reader
// understands the subset of pickle that torch.save writes for a state dict: dicts and
// OrderedDicts of tensors (and nested dicts, as in {"state_dict": ...} checkpoints), tensors
// rebuilt from the zip archive's storages, and plain values it ignores.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace kgain::native {

// Name -> tensor for every tensor entry of the top-level dict, or of the dict found under
// "state_dict" or "model" when the file is a checkpoint wrapping one. Throws std::runtime_error
// naming the file and what is wrong.
std::map<std::string, at::Tensor> read_state_dict(const std::string& path);

}  // namespace kgain::native
