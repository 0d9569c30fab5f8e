// Backbone inference speed: images per second of the extraction module (all taps, pooled) for
// the native MobileNetV2 and ResNet-18, as a plain TorchScript module, frozen and optimized for
// inference, and optimized with channels-last input.
//
//   ./build/bench/kgain_bench_backbones [--threads 2] [--size 224] [--batch 32] [--batches 8]
//                                       [--architectures mobilenet_v2,resnet18,vit_b_16,...]
//
// Random input and random weights (speed does not depend on the values). Run it on an otherwise
// idle machine: two LibTorch processes at once share the cores and both slow down.
//
//   ./build/bench/kgain_bench_backbones --model MODEL.ts.pt --size 96 [--threads 2] [--batch N]
//                                       [--batches B]
// instead measures the raw forward limit of a TorchScript file's extraction module (frozen,
// optimized, every child of `features` tapped) on random tensors at batch sizes 16 to 256 (or
// N alone), B timed batches each (default: 1,024 images' worth), and prints the best: the
// ceiling for kgain's extraction throughput, which also decodes images.
//
// Both run with the allocator setting and the TorchScript executor kgain itself uses
// (core/allocator.hpp, core/torch_runtime.hpp); --malloc system measures with glibc's defaults
// instead, --executor profiling with LibTorch's default executor, for before/after comparisons.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>
#include <vector>

#include <ATen/ATen.h>

#include <kgain/backbone.hpp>
#include "runtime/allocator.hpp"
#include "runtime/torch_runtime.hpp"
#include "plan/registry.hpp"
#include "study/run.hpp"

using namespace kgain;

namespace {

std::int64_t arg(int argc, char** argv, const std::string& name, std::int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return std::atoll(argv[i + 1]);
  return fallback;
}

}  // namespace

std::string string_arg(int argc, char** argv, const std::string& name) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return "";
}

double images_per_second(Network& network, const at::Tensor& images, std::int64_t batches) {
  for (int i = 0; i < 2; ++i) network.extract(images);
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < batches; ++i) network.extract(images);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(images.size(0) * batches) / seconds;
}

// `batches` timed batches per batch size; 0: 1,024 images' worth (at least 2).
int raw_limit(core::Registry& registry, const std::string& model, std::int64_t size,
              const std::vector<std::int64_t>& batch_sizes, std::int64_t batches) {
  Options options("backbone", "");
  options.set("file", model);
  auto backbone = registry.create<Backbone>("torchscript", options);
  // What a study pays once per network and the rates below leave out: building it (load, freeze,
  // optimize) and its first batch (the executor's passes, the check against the plain graph).
  auto start = std::chrono::steady_clock::now();
  auto network = backbone->instantiate(Variant{}, Pooling::avg);
  const double build = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double best = 0;
  std::int64_t best_batch = 0;
  for (std::int64_t batch : batch_sizes) {
    const at::Tensor images = at::randn({batch, 3, size, size}, at::detail::createCPUGenerator(0));
    if (batch == batch_sizes.front()) {
      start = std::chrono::steady_clock::now();
      network->extract(images);
      std::printf("network built in %.3f s, its first batch (%lld images) in %.3f s\n", build,
                  static_cast<long long>(batch),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const double rate =
        images_per_second(*network, images, batches > 0 ? batches : std::max<std::int64_t>(2, 1024 / batch));
    std::printf("batch %lld: %.1f images/s\n", static_cast<long long>(batch), rate);
    if (rate > best) best = rate, best_batch = batch;
  }
  std::printf("best %.1f images/s (batch %lld), %s at %lld px\n", best, static_cast<long long>(best_batch),
              model.c_str(), static_cast<long long>(size));
  return 0;
}

int main(int argc, char** argv) {
  if (string_arg(argc, argv, "--malloc") != "system") core::keep_freed_memory_for_reuse();  // as kgain itself runs
  if (string_arg(argc, argv, "--executor") != "profiling")
    core::run_graphs_without_profiling();  // likewise (torch_runtime.hpp)
  const int threads = static_cast<int>(arg(argc, argv, "--threads", 2));
  const std::int64_t size = arg(argc, argv, "--size", 224), batch = arg(argc, argv, "--batch", 32),
                     batches = arg(argc, argv, "--batches", 8);
  core::set_threads(threads);
  core::Registry registry;
  registry.add_directory(KGAIN_PLUGIN_DIR);
  if (const std::string model = string_arg(argc, argv, "--model"); !model.empty())
    return raw_limit(registry, model, size,
                     string_arg(argc, argv, "--batch").empty() ? std::vector<std::int64_t>{16, 32, 64, 128, 256}
                                                               : std::vector<std::int64_t>{batch},
                     string_arg(argc, argv, "--batches").empty() ? 0 : batches);
  std::printf("threads %d, input %lld px, batch %lld, %lld timed batches after 2 warm-up batches\n\n", threads,
              static_cast<long long>(size), static_cast<long long>(batch), static_cast<long long>(batches));
  std::printf("| backbone | module | images/s | speed-up |\n|---|---|---|---|\n");
  const at::Tensor images = at::randn({batch, 3, size, size}, at::detail::createCPUGenerator(0));
  std::vector<std::string> architectures;
  std::stringstream list(string_arg(argc, argv, "--architectures").empty() ? "mobilenet_v2,resnet18"
                                                                           : string_arg(argc, argv, "--architectures"));
  for (std::string name; std::getline(list, name, ',');) architectures.push_back(name);
  for (const std::string& architecture : architectures) {
    const bool tokens = architecture.rfind("vit", 0) == 0;  // a ViT's taps are token sequences
    double plain_rate = 0;
    struct Mode {
      const char* name;
      bool optimize, channels_last;
    };
    for (const Mode mode :
         {Mode{"plain TorchScript", false, false}, Mode{"frozen + optimize_for_inference", true, false},
          Mode{"optimized, channels-last input", true, true}}) {
      if (mode.channels_last && (tokens || architecture.rfind("swin", 0) == 0)) continue;  // not feature maps in NCHW
      Options options("backbone", "");
      options.set("architecture", architecture);
      options.set("optimize", mode.optimize);
      options.set("channels_last", mode.channels_last);
      auto backbone = registry.create<Backbone>("native", options);
      auto network = backbone->instantiate(Variant{Variant::Kind::random, 0}, tokens ? Pooling::cls : Pooling::avg);
      const double rate = images_per_second(*network, images, batches);
      if (plain_rate == 0) plain_rate = rate;
      std::printf("| %s | %s | %.1f | %.2fx |\n", architecture.c_str(), mode.name, rate, rate / plain_rate);
      std::fflush(stdout);
    }
  }
  return 0;
}
