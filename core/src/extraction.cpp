#include "kgain/core/extraction.hpp"

#include "kgain/core/progress.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <thread>
#include <limits>
#include <map>
#include <memory>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

namespace kgain::core {
namespace {

struct DecodedChunk {
  at::Tensor images;
  std::vector<std::pair<std::int64_t, std::string>> bad;  // sample index, reason
};

// Decodes images [begin, end) with `threads` workers (image i goes to worker i mod threads).
// Each image is decoded by the same code whatever the worker, so the batch is identical for
// any number of threads; only one chunk is ever decoded ahead, so memory is bounded by the
// chunk size, not the dataset.
DecodedChunk decode_chunk(const std::vector<Sample>& samples, std::int64_t begin, std::int64_t end, const Preprocessing& prep, bool skip_bad,
                          int threads) {
  DecodedChunk out{at::zeros({end - begin, 3, prep.size, prep.size}, at::kFloat), {}};
  float* data = out.images.data_ptr<float>();
  const std::int64_t stride = 3 * prep.size * prep.size;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, end - begin)));
  std::vector<std::vector<std::pair<std::int64_t, std::string>>> bad(threads);
  std::vector<std::exception_ptr> errors(threads);
  const auto work = [&](int worker) {
    try {
      for (std::int64_t i = begin + worker; i < end; i += threads) {
        try {
          load_sample(samples[i], prep, data + (i - begin) * stride);
        } catch (const ImageError& e) {
          if (!skip_bad) throw;
          bad[worker].emplace_back(i, e.what());
          std::fill(data + (i - begin) * stride, data + (i - begin + 1) * stride, 0.0f);
        }
      }
    } catch (...) {
      errors[worker] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (const auto& b : bad) out.bad.insert(out.bad.end(), b.begin(), b.end());
  std::sort(out.bad.begin(), out.bad.end());
  return out;
}

}  // namespace

std::vector<std::vector<at::Tensor>> extract_features(Backbone& backbone, const std::vector<Variant>& variants, Pooling pooling,
                                                      const std::vector<Sample>& samples, const Preprocessing& prep,
                                                      std::int64_t batch_size, const FeatureCache& cache, ExtractionStats& stats,
                                                      bool skip_bad_images, int decode_threads) {
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t n = static_cast<std::int64_t>(samples.size());
  const std::int64_t chunks = (n + chunk_images - 1) / chunk_images;
  const auto chunk_range = [&](std::int64_t c) { return std::make_pair(c * chunk_images, std::min(n, (c + 1) * chunk_images)); };

  // parts[v][c]: the chunk's tap features; read what the cache has first.
  std::vector<std::vector<std::vector<at::Tensor>>> parts(variants.size(), std::vector<std::vector<at::Tensor>>(chunks));
  std::vector<std::int64_t> todo;  // chunks that some variant still lacks
  for (std::int64_t c = 0; c < chunks; ++c) {
    const auto [b, e] = chunk_range(c);
    bool missing = false;
    for (std::size_t v = 0; v < variants.size(); ++v) {
      if (cache.load(variants[v].name(), c, e - b, parts[v][c])) ++stats.chunks_reused;
      else missing = true;
    }
    if (missing) todo.push_back(c);
  }
  if (!todo.empty())
    spdlog::info("extracting features: {} of {} chunks of up to {} images to compute, {} (chunk, variant) pairs from the cache",
                 todo.size(), chunks, chunk_images, stats.chunks_reused);

  std::map<std::size_t, std::unique_ptr<Network>> networks;  // built only for variants with work
  std::int64_t pending = 0;  // images x variants still to compute
  for (auto c : todo)
    for (std::size_t v = 0; v < variants.size(); ++v)
      if (parts[v][c].empty()) pending += chunk_range(c).second - chunk_range(c).first;
  Progress progress("features", "images", pending);
  std::future<DecodedChunk> next;
  if (!todo.empty()) next = std::async(std::launch::async, decode_chunk, std::cref(samples), chunk_range(todo[0]).first,
                                       chunk_range(todo[0]).second, std::cref(prep), skip_bad_images, decode_threads);
  for (std::size_t k = 0; k < todo.size(); ++k) {
    const std::int64_t c = todo[k];
    const auto [b, e] = chunk_range(c);
    const DecodedChunk decoded = next.get();  // rethrows an ImageError from the decoding thread
    const at::Tensor& images = decoded.images;
    stats.images_decoded += e - b;
    for (const auto& [index, reason] : decoded.bad) {
      spdlog::warn("skipped: {}", reason);
      cache.record_bad_image(samples[index].path, reason);
    }
    if (k + 1 < todo.size())
      next = std::async(std::launch::async, decode_chunk, std::cref(samples), chunk_range(todo[k + 1]).first,
                        chunk_range(todo[k + 1]).second, std::cref(prep), skip_bad_images, decode_threads);
    for (std::size_t v = 0; v < variants.size(); ++v) {
      if (!parts[v][c].empty()) continue;
      auto& net = networks[v];
      if (!net) net = backbone.instantiate(variants[v], pooling);
      std::vector<std::vector<at::Tensor>> per_tap;
      for (std::int64_t i = 0; i < e - b; i += batch_size) {
        auto taps = net->extract(images.slice(0, i, std::min(e - b, i + batch_size)));
        if (per_tap.empty()) per_tap.resize(taps.size());
        for (std::size_t t = 0; t < taps.size(); ++t) per_tap[t].push_back(taps[t]);
      }
      for (auto& pieces : per_tap) parts[v][c].push_back(at::cat(pieces, 0));
      for (const auto& bad : decoded.bad)  // a skipped image has no features
        for (auto& tap : parts[v][c]) tap[bad.first - b].fill_(std::numeric_limits<float>::quiet_NaN());
      cache.store(variants[v].name(), c, parts[v][c]);
      stats.images_forwarded += e - b;
      ++stats.chunks_extracted;
      progress.advance(e - b);
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::debug("features: chunk {}/{} done, {:.1f} images/s over all variants", k + 1, todo.size(),
                 elapsed > 0 ? stats.images_forwarded / elapsed : 0.0);
  }

  std::vector<std::vector<at::Tensor>> features(variants.size());
  for (std::size_t v = 0; v < variants.size(); ++v) {
    const std::size_t taps = parts[v][0].size();
    for (std::size_t t = 0; t < taps; ++t) {
      std::vector<at::Tensor> pieces;
      for (std::int64_t c = 0; c < chunks; ++c) pieces.push_back(parts[v][c][t]);
      features[v].push_back(at::cat(pieces, 0));
    }
  }
  // Skipped images, found by their NaN features (so those from earlier runs count too).
  if (!features.empty() && !features[0].empty()) {
    const auto reasons = cache.bad_images();
    const at::Tensor nan_rows = at::isnan(features[0][0]).any(1);
    for (std::int64_t i = 0; i < n; ++i)
      if (nan_rows[i].item<bool>()) {
        auto it = reasons.find(samples[i].path);
        stats.bad_images.emplace_back(i, it != reasons.end() ? it->second : samples[i].path + ": could not be decoded");
      }
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return features;
}

at::Tensor decode_calibration_images(const std::vector<Sample>& samples, const std::vector<std::int64_t>& indices,
                                     const Preprocessing& prep, bool skip_bad_images) {
  std::vector<at::Tensor> images;
  for (auto i : indices) {
    at::Tensor image = at::empty({3, prep.size, prep.size}, at::kFloat);
    try {
      load_sample(samples[i], prep, image.data_ptr<float>());
    } catch (const ImageError&) {
      if (!skip_bad_images) throw;
      continue;
    }
    images.push_back(image);
  }
  if (images.empty()) throw std::runtime_error("no calibration image could be decoded");
  return at::stack(images);
}

at::Tensor extract_source_predictions(Backbone& backbone, const std::vector<Sample>& samples, const Preprocessing& prep,
                                      std::int64_t batch_size, const FeatureCache& cache, bool skip_bad_images) {
  const std::int64_t n = static_cast<std::int64_t>(samples.size());
  const std::int64_t chunks = (n + chunk_images - 1) / chunk_images;
  std::unique_ptr<Network> net;
  std::vector<at::Tensor> parts;
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t b = c * chunk_images, e = std::min(n, (c + 1) * chunk_images);
    std::vector<at::Tensor> cached;
    if (cache.load("source", c, e - b, cached)) {
      parts.push_back(cached.front());
      continue;
    }
    if (!net) net = backbone.instantiate(Variant{Variant::Kind::pretrained, 0}, Pooling::avg);
    const DecodedChunk decoded = decode_chunk(samples, b, e, prep, skip_bad_images, 1);
    std::vector<at::Tensor> pieces;
    for (std::int64_t i = 0; i < e - b; i += batch_size) {
      const at::Tensor logits = net->classify(decoded.images.slice(0, i, std::min(e - b, i + batch_size)));
      if (!logits.defined()) return {};
      pieces.push_back(at::softmax(logits.to(at::kFloat), 1));
    }
    at::Tensor probs = at::cat(pieces, 0);
    for (const auto& bad : decoded.bad) probs[bad.first - b].fill_(std::numeric_limits<float>::quiet_NaN());
    cache.store("source", c, {probs});
    parts.push_back(probs);
    spdlog::debug("source predictions: chunk {}/{}", c + 1, chunks);
  }
  return at::cat(parts, 0);
}

}  // namespace kgain::core
