#include "safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace kgain::native {
namespace {

using json = nlohmann::json;
constexpr std::uint64_t max_header = 100'000'000;  // the reference implementation's limit

struct DType {
  const char* name;
  at::ScalarType type;
  std::uint64_t bytes;
};
const DType dtypes[] = {{"F64", at::kDouble, 8},    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},
                        {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8},  {"I32", at::kInt, 4},
                        {"I16", at::kShort, 2},     {"I8", at::kChar, 1},   {"U8", at::kByte, 1},
                        {"BOOL", at::kBool, 1}};

std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Entry {
  std::string name;
  const DType* dtype = nullptr;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& name, const json& j) {
  const auto fail = [&](const std::string& what) { return std::runtime_error("the tensor '" + name + "' " + what); };
  if (!j.is_object() || !j.contains("dtype") || !j.contains("shape") || !j.contains("data_offsets"))
    throw fail("has no dtype, shape and data_offsets");
  Entry e{name, nullptr, {}, 0, 0};
  const json& dtype = j.at("dtype");
  for (const auto& d : dtypes)
    if (dtype.is_string() && dtype.get<std::string>() == d.name) e.dtype = &d;
  if (!e.dtype)
    throw fail("has dtype " + dtype.dump() +
               ", which kgain does not read (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
  const json& shape = j.at("shape");
  if (!shape.is_array() || shape.size() > 8) throw fail("has a shape that is not a list of at most 8 sizes");
  std::uint64_t count = 1;
  for (const auto& s : shape) {
    if (!s.is_number_unsigned()) throw fail("has a size that is not a whole number >= 0");
    const std::uint64_t v = s.get<std::uint64_t>();
    if (v > (1ULL << 40) || (v && count > (1ULL << 40) / v)) throw fail("declares more than 2^40 elements");
    count *= v;
    e.shape.push_back(static_cast<std::int64_t>(v));
  }
  const json& offsets = j.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw fail("has data_offsets that are not [begin, end]");
  e.begin = offsets[0].get<std::uint64_t>(), e.end = offsets[1].get<std::uint64_t>();
  if (e.end < e.begin || e.end - e.begin != count * e.dtype->bytes)
    throw fail("spans " + std::to_string(e.end - e.begin) + " bytes for " + std::to_string(count) + " values of " +
               e.dtype->name);
  return e;
}

std::vector<Entry> parse_header(const std::string& text) {
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(std::string("the header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw std::runtime_error("the header is not a JSON object");
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items())
    if (name != "__metadata__") entries.push_back(parse_entry(name, value));
  return entries;
}

}  // namespace

bool looks_like_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char start[9] = {};
  if (!in.read(reinterpret_cast<char*>(start), 9)) return false;
  return read_u64_le(start) <= max_header && start[8] == '{';
}

std::map<std::string, at::Tensor> read_safetensors(const std::string& path) {
  const auto fail = [&](const std::string& what) {
    return std::runtime_error("cannot read '" + path + "' as safetensors: " + what);
  };
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw fail("cannot open it");
  const std::uint64_t file_size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  unsigned char length[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(length), 8))
    throw fail("shorter than its 8-byte header length");
  const std::uint64_t n = read_u64_le(length);
  if (n > max_header || n > file_size - 8)
    throw fail("declares a header of " + std::to_string(n) + " bytes in a file of " + std::to_string(file_size));
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  std::vector<Entry> entries;
  try {
    entries = parse_header(text);
  } catch (const std::runtime_error& e) {
    throw fail(e.what());
  }
  // The byte ranges, in order, must tile the data exactly.
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin < b->begin || (a->begin == b->begin && a->end < b->end);
  });
  std::uint64_t expected = 0;
  for (const Entry* e : by_offset) {
    if (e->begin != expected)
      throw fail("the tensor '" + e->name + "' starts at byte " + std::to_string(e->begin) + ", not " +
                 std::to_string(expected) + " (a gap or an overlap)");
    expected = e->end;
  }
  const std::uint64_t data_size = file_size - 8 - n;
  if (expected != data_size)
    throw fail("the tensors cover " + std::to_string(expected) + " bytes of data, the file holds " +
               std::to_string(data_size) + " (truncated or padded)");
  if (entries.empty()) throw fail("it holds no tensors");
  std::map<std::string, at::Tensor> out;
  for (const auto& e : entries) {
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    if (!in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin)))
      throw fail("the data of '" + e.name + "' is cut short");
    if (e.dtype->type == at::kBool) {
      const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
      for (std::uint64_t i = 0; i < e.end - e.begin; ++i)
        if (bytes[i] > 1) throw fail("the BOOL tensor '" + e.name + "' holds a byte other than 0 and 1");
    }
    if (t.is_floating_point() && !at::isfinite(t).all().item<bool>())
      throw std::runtime_error(
          "'" + path + "': the tensor '" + e.name +
          "' holds NaN or infinite values; the weights are damaged (download or copy the file again)");
    out.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace kgain::native
