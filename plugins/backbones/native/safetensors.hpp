// Reading a .safetensors file (Hugging Face's weight format, the one timm and the Hub ship):
//   8 bytes   N, little-endian: the size of the header
//   N bytes   a JSON object: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//             ..., "__metadata__": {...}} (padded with spaces)
//   the rest  the tensors' bytes, little-endian, at data_offsets relative to this point
// As the reference implementation does, the header must be at most 100 MB, every tensor's
// byte range must match its dtype and shape, and the ranges must tile the data exactly (no
// gap, overlap or trailing byte); anything else is refused naming the tensor.
// Threads: a plain function without shared state.
#pragma once

#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace kgain::native {

// Name -> tensor for every tensor of the file, in the file's dtypes. Throws std::runtime_error
// naming the file and what is wrong.
std::map<std::string, at::Tensor> read_safetensors(const std::string& path);

// True when the file starts like a safetensors file (a header length, then '{').
bool looks_like_safetensors(const std::string& path);

}  // namespace kgain::native
