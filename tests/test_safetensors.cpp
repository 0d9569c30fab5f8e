// The native backbone's .safetensors reader: files written by
// tests/fixtures/backbones/make_safetensors.py (by hand, as the format is simple) load bit-exactly,
// and damaged or forged files are refused naming what is wrong.
#include <torch/torch.h>
#undef CHECK

#include "test_support.hpp"
#include "test_plugins.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <kgain/backbone.hpp>
#include "images/image.hpp"
#include "plan/registry.hpp"

#include "safetensors.hpp"

using namespace kgain;
using namespace kgain::core;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string fixtures() { return test::safetensors_fixtures(); }

std::shared_ptr<Backbone> mobilenet(const std::string& weights) {
  Options options("backbone", "");
  options.set("architecture", std::string("mobilenet_v1"));
  options.set("width", 0.25);
  options.set("padding", std::string("tf_same"));
  options.set("weights", weights);
  return test::plugins().create<Backbone>("native", options);
}

// A safetensors file from a header text and data bytes.
std::string forge(const std::string& name, const std::string& header, const std::string& data,
                  std::uint64_t length = 0) {
  const std::string path = fixtures() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = length ? length : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
  return path;
}

std::string floats(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), 4);
  return s;
}

}  // namespace

TEST_CASE("A state dict converted to safetensors gives the same network, bit for bit", "[native][safetensors]") {
  auto from_pt = mobilenet(test::models_dir() + "/mobilenet_v1_0.25_128_quant.state_dict.pt");
  auto from_st = mobilenet(fixtures() + "/weights.safetensors");
  at::Tensor images = torch::empty({2, 3, 128, 128});
  load_image(test::models_dir() + "/sanity/chelsea.png", {128, "shorter_side_crop"}, images[0].data_ptr<float>());
  load_image(test::models_dir() + "/sanity/coffee.png", {128, "shorter_side_crop"}, images[1].data_ptr<float>());
  const auto a = from_pt->instantiate(Variant{}, Pooling::avg)->extract(images);
  const auto b = from_st->instantiate(Variant{}, Pooling::avg)->extract(images);
  REQUIRE(a.size() == b.size());
  for (std::size_t t = 0; t < a.size(); ++t) CHECK(at::equal(a[t], b[t]));
  CHECK(from_st->instantiate(Variant{}, Pooling::avg)->classify(images)[1].argmax().item<std::int64_t>() ==
        967);  // espresso
}

TEST_CASE("safetensors: every dtype reads with its values", "[safetensors]") {
  const auto t = native::read_safetensors(fixtures() + "/dtypes.safetensors");
  REQUIRE(t.size() == 12);
  CHECK(t.at("f64").scalar_type() == at::kDouble);
  CHECK(t.at("f64")[1].item<double>() == -2.25);
  CHECK(at::equal(t.at("f32"), torch::arange(6, torch::kFloat).reshape({2, 3})));
  CHECK(t.at("f16")[1].item<float>() == 65504.0f);
  CHECK(t.at("bf16").scalar_type() == at::kBFloat16);
  CHECK(t.at("bf16")[1].item<float>() == -3.0f);
  CHECK(t.at("i64")[0].item<std::int64_t>() == -(std::int64_t{1} << 40));
  CHECK(t.at("i32")[0].item<int>() == -5);
  CHECK(t.at("i16")[0].item<int>() == 300);
  CHECK(t.at("i8")[0].item<int>() == -128);
  CHECK(t.at("u8")[0].item<int>() == 255);
  CHECK(t.at("bool")[0].item<bool>());
  CHECK(t.at("empty").sizes() == at::IntArrayRef({0, 4}));
  CHECK(t.at("scalar").dim() == 0);
  CHECK(t.at("scalar").item<float>() == 3.0f);
}

TEST_CASE("safetensors: truncated, forged and damaged files are refused naming the problem", "[safetensors][trust]") {
  const std::string good =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  CHECK(native::read_safetensors(forge("good.safetensors", good, floats({1, 2, 3}))).size() == 2);
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("short.safetensors", good, floats({1, 2}))),
                      Contains("truncated or padded"));
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("long.safetensors", good, floats({1, 2, 3, 4}))),
                      Contains("truncated or padded"));
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("huge.safetensors", good, "", 1ULL << 60)),
                      Contains("declares a header of"));
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("cut.safetensors", good, "", good.size() + 10)),
                      Contains("declares a header of"));
  const std::string overlap =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("overlap.safetensors", overlap, floats({1, 2}))),
                      Contains("'b' starts at byte 4") && Contains("overlap"));
  const std::string gap = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("gap.safetensors", gap, floats({1, 2}))), Contains("gap"));
  const std::string wrong_size = R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("size.safetensors", wrong_size, floats({1, 2}))),
                      Contains("spans 8 bytes for 3 values of F32"));
  const std::string dtype = R"({"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})";
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("dtype.safetensors", dtype, floats({1, 2}))),
                      Contains("\"F8_E4M3\", which kgain does not read"));
  const std::string overflow = R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})";
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("overflow.safetensors", overflow, floats({1, 2}))),
                      Contains("more than 2^40"));
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("json.safetensors", "{\"a\": [", "")), Contains("not valid JSON"));
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("nan.safetensors", good, floats({1, NAN, 3}))),
                      Contains("'a' holds NaN"));
  const std::string flag = R"({"f":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})";
  REQUIRE_THROWS_WITH(native::read_safetensors(forge("bool.safetensors", flag, std::string("\x01\x02", 2))),
                      Contains("other than 0 and 1"));
  // Through the backbone: the file and the reason, not a crash.
  REQUIRE_THROWS_WITH(mobilenet(forge("short2.safetensors", good, floats({1, 2}))),
                      Contains("short2.safetensors") && Contains("truncated"));
}
