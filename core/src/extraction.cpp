#include "kgain/core/extraction.hpp"

#include "kgain/core/image_identity.hpp"
#include "kgain/core/progress.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <thread>
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

// Reads (variant, chunk) from the cache, checked for finite values. A chunk that lists
// undecodable images (cached by a run that skipped them) is an error naming the first one when
// this run may not skip them.
bool load_chunk(const FeatureCache& cache, const std::string& variant, std::int64_t c, std::int64_t begin, std::int64_t end,
                const ExtractionInput& input, FeatureChunk& out) {
  if (!cache.load(variant, c, end - begin, chunk_identity(input.identities, begin, end), out)) return false;
  if (!out.bad.empty() && !input.skip_bad_images)
    throw ImageError(out.bad.front().second + " (set [dataset] on_bad_image = \"skip\" to leave such images out)");
  for (std::size_t t = 0; t < out.taps.size(); ++t)
    check_finite(out.taps[t], "the cached features of variant '" + variant + "' (tap " + std::to_string(t) + ", " + cache.chunk_path(variant, c) + ")",
                 input.samples, begin);
  return true;
}

}  // namespace

void check_finite(const at::Tensor& features, const std::string& what, const std::vector<Sample>& samples, std::int64_t begin) {
  const at::Tensor finite_rows = at::isfinite(features).all(1);
  if (finite_rows.all().item<bool>()) return;
  const std::int64_t row = at::logical_not(finite_rows).nonzero()[0][0].item<std::int64_t>();
  throw std::runtime_error(what + " hold NaN or infinite values, first for " + samples[static_cast<std::size_t>(begin + row)].path +
                           ": the weights or the network's arithmetic are broken (check the weights file; kgain refuses "
                           "non-finite weights at load), so no score is computed from them");
}

std::vector<std::vector<at::Tensor>> extract_features(Backbone& backbone, const std::vector<Variant>& variants, Pooling pooling,
                                                      const ExtractionInput& input, const FeatureCache& cache, ExtractionStats& stats) {
  const auto start = std::chrono::steady_clock::now();
  const auto& samples = input.samples;
  const std::int64_t n = static_cast<std::int64_t>(samples.size());
  const std::int64_t chunks = (n + chunk_images - 1) / chunk_images;
  const auto chunk_range = [&](std::int64_t c) { return std::make_pair(c * chunk_images, std::min(n, (c + 1) * chunk_images)); };

  // parts[v][c]: the chunk's tap features; read what the cache has first.
  std::vector<std::vector<FeatureChunk>> parts(variants.size(), std::vector<FeatureChunk>(chunks));
  std::vector<std::int64_t> todo;  // chunks that some variant still lacks
  for (std::int64_t c = 0; c < chunks; ++c) {
    const auto [b, e] = chunk_range(c);
    bool missing = false;
    for (std::size_t v = 0; v < variants.size(); ++v) {
      if (load_chunk(cache, variants[v].name(), c, b, e, input, parts[v][c])) ++stats.chunks_reused;
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
      if (parts[v][c].taps.empty()) pending += chunk_range(c).second - chunk_range(c).first;
  Progress progress("features", "images", pending);
  const auto decode = [&](std::int64_t c) {
    return std::async(std::launch::async, decode_chunk, std::cref(samples), chunk_range(c).first, chunk_range(c).second,
                      std::cref(input.prep), input.skip_bad_images, input.decode_threads);
  };
  std::future<DecodedChunk> next;
  if (!todo.empty()) next = decode(todo[0]);
  for (std::size_t k = 0; k < todo.size(); ++k) {
    const std::int64_t c = todo[k];
    const auto [b, e] = chunk_range(c);
    const DecodedChunk decoded = next.get();  // rethrows an ImageError from the decoding thread
    stats.images_decoded += e - b;
    if (k + 1 < todo.size()) next = decode(todo[k + 1]);
    for (const auto& [index, reason] : decoded.bad) spdlog::warn("skipped: {}", reason);
    for (std::size_t v = 0; v < variants.size(); ++v) {
      if (!parts[v][c].taps.empty()) continue;
      auto& net = networks[v];
      if (!net) net = backbone.instantiate(variants[v], pooling);
      std::vector<std::vector<at::Tensor>> per_tap;
      for (std::int64_t i = 0; i < e - b; i += input.batch_size) {
        auto taps = net->extract(decoded.images.slice(0, i, std::min(e - b, i + input.batch_size)));
        if (per_tap.empty()) per_tap.resize(taps.size());
        for (std::size_t t = 0; t < taps.size(); ++t) per_tap[t].push_back(taps[t]);
      }
      FeatureChunk& chunk = parts[v][c];
      for (auto& pieces : per_tap) chunk.taps.push_back(at::cat(pieces, 0).to(at::kFloat).contiguous());
      for (std::size_t t = 0; t < chunk.taps.size(); ++t) {
        for (const auto& bad : decoded.bad) chunk.taps[t][bad.first - b].zero_();  // no features for what was not an image
        check_finite(chunk.taps[t], "the features of variant '" + variants[v].name() + "' at tap " + std::to_string(t), samples, b);
      }
      for (const auto& [index, reason] : decoded.bad) chunk.bad.emplace_back(index - b, reason);
      cache.store(variants[v].name(), c, chunk_identity(input.identities, b, e), chunk);
      stats.images_forwarded += e - b;
      ++stats.chunks_extracted;
      progress.advance(e - b);
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::debug("features: chunk {}/{} done, {:.1f} images/s over all variants", k + 1, todo.size(),
                 elapsed > 0 ? stats.images_forwarded / elapsed : 0.0);
  }

  // The images left out: the same rows in every variant's chunk (they were keyed on the same images).
  for (std::int64_t c = 0; c < chunks; ++c)
    for (const auto& [row, reason] : parts[0][c].bad) stats.bad_images.emplace_back(c * chunk_images + row, reason);
  std::vector<std::vector<at::Tensor>> features(variants.size());
  for (std::size_t v = 0; v < variants.size(); ++v) {
    const std::size_t taps = parts[v][0].taps.size();
    for (std::size_t t = 0; t < taps; ++t) {
      std::vector<at::Tensor> pieces;
      for (std::int64_t c = 0; c < chunks; ++c) pieces.push_back(parts[v][c].taps[t]);
      features[v].push_back(at::cat(pieces, 0));
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

at::Tensor extract_source_predictions(Backbone& backbone, const ExtractionInput& input, const FeatureCache& cache) {
  const std::int64_t n = static_cast<std::int64_t>(input.samples.size());
  const std::int64_t chunks = (n + chunk_images - 1) / chunk_images;
  std::unique_ptr<Network> net;
  std::vector<at::Tensor> parts;
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t b = c * chunk_images, e = std::min(n, (c + 1) * chunk_images);
    FeatureChunk chunk;
    if (load_chunk(cache, "source", c, b, e, input, chunk)) {
      parts.push_back(chunk.taps.front());
      continue;
    }
    if (!net) net = backbone.instantiate(Variant{Variant::Kind::pretrained, 0}, Pooling::avg);
    const DecodedChunk decoded = decode_chunk(input.samples, b, e, input.prep, input.skip_bad_images, input.decode_threads);
    std::vector<at::Tensor> pieces;
    for (std::int64_t i = 0; i < e - b; i += input.batch_size) {
      const at::Tensor logits = net->classify(decoded.images.slice(0, i, std::min(e - b, i + input.batch_size)));
      if (!logits.defined()) return {};
      pieces.push_back(at::softmax(logits.to(at::kFloat), 1));
    }
    chunk.taps.push_back(at::cat(pieces, 0).contiguous());
    for (const auto& [index, reason] : decoded.bad) {
      chunk.taps.front()[index - b].zero_();
      chunk.bad.emplace_back(index - b, reason);
    }
    check_finite(chunk.taps.front(), "the pretrained network's class probabilities", input.samples, b);
    cache.store("source", c, chunk_identity(input.identities, b, e), chunk);
    parts.push_back(chunk.taps.front());
    spdlog::debug("source predictions: chunk {}/{}", c + 1, chunks);
  }
  return at::cat(parts, 0);
}

}  // namespace kgain::core
