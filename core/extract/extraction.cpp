#include "extract/extraction.hpp"

#include "images/image_identity.hpp"
#include "runtime/progress.hpp"

#include <algorithm>
#include <csignal>
#include <chrono>
#include <exception>
#include <future>
#include <thread>
#include <map>
#include <unordered_map>
#include <stdexcept>
#include <memory>

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

namespace kgain::core {
namespace {

struct DecodedChunk {
  at::Tensor images;
  std::vector<std::pair<std::int64_t, std::string>> bad;  // sample index, reason
};

// Decodes the images at `indices` with `threads` workers (image k goes to worker k mod threads).
// Each image is decoded by the same code whatever the worker, so the batch is identical for
// any number of threads; only one chunk is ever decoded ahead, so memory is bounded by the
// chunk size, not the dataset.
DecodedChunk decode_chunk(const std::vector<Sample>& samples, const std::vector<std::int64_t>& indices,
                          const Preprocessing& prep, bool skip_bad, int threads) {
  const auto n = static_cast<std::int64_t>(indices.size());
  DecodedChunk out{at::zeros({n, 3, prep.size, prep.size}, at::kFloat), {}};
  float* data = out.images.data_ptr<float>();
  const std::int64_t stride = 3 * prep.size * prep.size;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n)));
  std::vector<std::vector<std::pair<std::int64_t, std::string>>> bad(threads);
  std::vector<std::exception_ptr> errors(threads);
  const auto work = [&](int worker) {
    try {
      for (std::int64_t k = worker; k < n; k += threads) {
        try {
          load_sample(samples[static_cast<std::size_t>(indices[k])], prep, data + k * stride);
        } catch (const ImageError& e) {
          if (!skip_bad) throw;
          bad[worker].emplace_back(k, e.what());
          std::fill(data + k * stride, data + (k + 1) * stride, 0.0f);
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

// Forwards the decoded images at positions `rows` of the chunk through `net`, batch by batch:
// features [rows, dim_t] per tap, checked for finite values.
std::vector<at::Tensor> forward_rows(Network& net, const at::Tensor& images, const std::vector<std::int64_t>& rows,
                                     std::int64_t batch_size, const std::string& variant,
                                     const std::vector<Sample>& samples, const std::vector<std::int64_t>& chunk) {
  const at::Tensor selected = rows.size() == static_cast<std::size_t>(images.size(0))
                                  ? images
                                  : images.index_select(0, at::tensor(rows, at::kLong));
  const auto n = selected.size(0);
  std::vector<std::vector<at::Tensor>> per_tap;
  for (std::int64_t i = 0; i < n; i += batch_size) {
    auto taps = net.extract(selected.slice(0, i, std::min(n, i + batch_size)));
    if (per_tap.empty()) per_tap.resize(taps.size());
    for (std::size_t t = 0; t < taps.size(); ++t) per_tap[t].push_back(taps[t]);
  }
  std::vector<at::Tensor> out;
  for (std::size_t t = 0; t < per_tap.size(); ++t) {
    out.push_back(at::cat(per_tap[t], 0).to(at::kFloat).contiguous());
    const at::Tensor finite_rows = at::isfinite(out.back()).all(1);
    if (!finite_rows.all().item<bool>()) {
      const auto row = at::logical_not(finite_rows).nonzero()[0][0].item<std::int64_t>();
      throw std::runtime_error(
          "the features of variant '" + variant + "' at tap " + std::to_string(t) +
          " hold NaN or infinite values, first for " +
          samples[static_cast<std::size_t>(chunk[static_cast<std::size_t>(rows[static_cast<std::size_t>(row)])])].path +
          ": the weights or the network's arithmetic are broken (check the weights file; kgain refuses "
          "non-finite weights at load), so no score is computed from them");
    }
  }
  return out;
}

}  // namespace

void check_finite(const at::Tensor& features, const std::string& what, const std::vector<Sample>& samples,
                  std::int64_t begin) {
  const at::Tensor finite_rows = at::isfinite(features).all(1);
  if (finite_rows.all().item<bool>()) return;
  const std::int64_t row = at::logical_not(finite_rows).nonzero()[0][0].item<std::int64_t>();
  throw std::runtime_error(
      what + " hold NaN or infinite values, first for " + samples[static_cast<std::size_t>(begin + row)].path +
      ": the weights or the network's arithmetic are broken (check the weights file; kgain refuses "
      "non-finite weights at load), so no score is computed from them");
}

namespace {

// What extraction has to do: per variant, the images its space lacks; the images some variant
// lacks, cut into this process's chunks; and the copies (same bytes) that wait for the first.
struct ExtractionWork {
  std::vector<std::vector<char>> missing;  // [variant][image]
  std::vector<std::vector<std::int64_t>> chunks;
  std::vector<std::pair<std::size_t, std::size_t>> copies;  // (image, the first with its content)
  std::int64_t pending = 0;                                 // images x variants this process computes
};

ExtractionWork plan_extraction(const std::vector<Variant>& variants, const ExtractionInput& input,
                               std::vector<FeatureSpace>& spaces, ExtractionStats& stats) {
  const auto& samples = input.samples;
  const auto& ids = input.identities;
  ExtractionWork work;
  work.missing.assign(variants.size(), std::vector<char>(samples.size(), 0));
  std::vector<std::int64_t> todo;  // images that some variant still lacks, in sample order
  for (std::size_t v = 0; v < variants.size(); ++v)
    spaces[v].verify(ids);  // a damaged segment found now is computed again
  // Two files with the same bytes are one image: the later ones wait for the first's features.
  std::unordered_map<std::uint64_t, std::size_t> first_of;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (const auto [it, fresh] = first_of.emplace(ids[i], i); !fresh) {
      work.copies.emplace_back(i, it->second);
      for (std::size_t v = 0; v < variants.size(); ++v) stats.images_from_store += spaces[v].has(ids[i]);
      continue;
    }
    bool any = false;
    for (std::size_t v = 0; v < variants.size(); ++v) {
      work.missing[v][i] = !spaces[v].has(ids[i]);
      any = any || work.missing[v][i];
      if (work.missing[v][i])
        ++work.pending;
      else
        ++stats.images_from_store;
    }
    if (any) todo.push_back(static_cast<std::int64_t>(i));
  }
  if (!todo.empty())
    spdlog::info(
        "extracting features: {} of {} images to compute ({} image x variant pairs), {} pairs from the feature store",
        todo.size(), samples.size(), work.pending, stats.images_from_store);
  for (std::size_t k = 0, c = 0; k < todo.size(); k += chunk_images, ++c)
    if (static_cast<int>(c % static_cast<std::size_t>(input.share_count)) == input.share_rank)
      work.chunks.emplace_back(todo.begin() + static_cast<std::ptrdiff_t>(k),
                               todo.begin() + static_cast<std::ptrdiff_t>(std::min(todo.size(), k + chunk_images)));
  if (input.share_count > 1) {
    work.pending = 0;
    for (const auto& chunk : work.chunks)
      for (auto i : chunk)
        for (std::size_t v = 0; v < variants.size(); ++v) work.pending += work.missing[v][static_cast<std::size_t>(i)];
  }
  return work;
}

}  // namespace

void extract_features(Backbone& backbone, const std::vector<Variant>& variants, Pooling pooling,
                      const ExtractionInput& input, std::vector<FeatureSpace>& spaces, ExtractionStats& stats) {
  const auto start = std::chrono::steady_clock::now();
  const auto& samples = input.samples;
  const auto& ids = input.identities;
  const ExtractionWork work = plan_extraction(variants, input, spaces, stats);
  const auto& missing = work.missing;
  const auto& chunks = work.chunks;
  const std::int64_t pending = work.pending;

  std::map<std::size_t, std::unique_ptr<Network>> networks;  // built only for variants with work
  Progress progress("features", "images", pending);
  const auto decode = [&](std::size_t k) {
    return std::async(std::launch::async, decode_chunk, std::cref(samples), std::cref(chunks[k]), std::cref(input.prep),
                      input.skip_bad_images, input.decode_threads);
  };
  std::future<DecodedChunk> next;
  if (!chunks.empty()) next = decode(0);
  for (std::size_t k = 0; k < chunks.size(); ++k) {
    const auto& chunk = chunks[k];
    const DecodedChunk decoded = next.get();  // rethrows an ImageError from the decoding thread
    stats.images_decoded += static_cast<std::int64_t>(chunk.size());
    if (k + 1 < chunks.size()) next = decode(k + 1);
    std::vector<char> bad(chunk.size(), 0);
    for (const auto& [row, reason] : decoded.bad) {
      bad[static_cast<std::size_t>(row)] = 1;
      stats.bad_images.push_back({chunk[static_cast<std::size_t>(row)], reason});
      spdlog::warn("skipped: {}", reason);
    }
    for (std::size_t v = 0; v < variants.size(); ++v) {
      std::vector<std::int64_t>
          rows;  // positions in the chunk this variant lacks (never a bad image: it has no features)
      std::vector<std::uint64_t> row_ids;
      for (std::size_t r = 0; r < chunk.size(); ++r)
        if (missing[v][static_cast<std::size_t>(chunk[r])] && !bad[r])
          rows.push_back(static_cast<std::int64_t>(r)), row_ids.push_back(ids[static_cast<std::size_t>(chunk[r])]);
      std::int64_t lacking = 0;
      for (auto i : chunk) lacking += missing[v][static_cast<std::size_t>(i)];
      if (!rows.empty()) {
        auto& net = networks[v];
        if (!net) net = backbone.instantiate(variants[v], pooling);
        spaces[v].store(row_ids,
                        forward_rows(*net, decoded.images, rows, input.batch_size, variants[v].name(), samples, chunk));
        stats.images_forwarded += static_cast<std::int64_t>(rows.size());
        if (++stats.segments_written == input.die_after_segments) std::raise(SIGKILL);
      }
      progress.advance(lacking);
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::debug("features: chunk {}/{} done, {:.1f} images/s over all variants", k + 1, chunks.size(),
                  elapsed > 0 ? stats.images_forwarded / elapsed : 0.0);
  }
  // A copy of an image that could not be decoded cannot be decoded either.
  std::map<std::int64_t, std::string> bad;
  for (const auto& b : stats.bad_images) bad.emplace(b.index, b.reason);
  for (const auto& [copy, first] : work.copies)
    if (const auto it = bad.find(static_cast<std::int64_t>(first)); it != bad.end())
      stats.bad_images.push_back({static_cast<std::int64_t>(copy), it->second});
  std::sort(stats.bad_images.begin(), stats.bad_images.end());
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

at::Tensor load_tap(const FeatureSpace& space, std::size_t tap, const std::vector<std::uint64_t>& identities,
                    const std::vector<BadImage>& left_out, const std::vector<Sample>& samples) {
  std::vector<std::uint64_t> ids = identities;
  for (const auto& [index, reason] : left_out) ids[static_cast<std::size_t>(index)] = 0;
  at::Tensor x = space.load_tap(tap, ids);
  check_finite(x, "the stored features of tap " + std::to_string(tap) + " (" + space.directory() + ")", samples, 0);
  return x;
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

at::Tensor extract_source_predictions(Backbone& backbone, Pooling pooling, const ExtractionInput& input,
                                      FeatureSpace& space, const std::vector<BadImage>& left_out) {
  std::vector<std::uint64_t> ids = input.identities;
  for (const auto& [index, reason] : left_out) ids[static_cast<std::size_t>(index)] = 0;
  space.verify(ids);
  std::vector<std::int64_t> todo;
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] != 0 && !space.has(ids[i])) todo.push_back(static_cast<std::int64_t>(i));
  std::unique_ptr<Network> net;
  for (std::size_t k = 0; k < todo.size(); k += chunk_images) {
    const std::vector<std::int64_t> chunk(
        todo.begin() + static_cast<std::ptrdiff_t>(k),
        todo.begin() + static_cast<std::ptrdiff_t>(std::min(todo.size(), k + chunk_images)));
    if (!net) net = backbone.instantiate(Variant{Variant::Kind::pretrained, 0}, pooling);
    const DecodedChunk decoded =
        decode_chunk(input.samples, chunk, input.prep, /*skip_bad=*/false, input.decode_threads);
    std::vector<at::Tensor> pieces;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(chunk.size()); i += input.batch_size) {
      const at::Tensor logits = net->classify(decoded.images.slice(
          0, i, std::min<std::int64_t>(static_cast<std::int64_t>(chunk.size()), i + input.batch_size)));
      if (!logits.defined()) return {};
      pieces.push_back(at::softmax(logits.to(at::kFloat), 1));
    }
    const at::Tensor probs = at::cat(pieces, 0).contiguous();
    check_finite(probs, "the pretrained network's class probabilities", input.samples, 0);
    std::vector<std::uint64_t> chunk_ids;
    for (auto i : chunk) chunk_ids.push_back(ids[static_cast<std::size_t>(i)]);
    space.store(chunk_ids, {probs});
    spdlog::debug("source predictions: {}/{} images", k + chunk.size(), todo.size());
  }
  if (space.dims().empty()) {  // nothing stored and nothing to compute: a head is still needed to know
    if (!net) net = backbone.instantiate(Variant{Variant::Kind::pretrained, 0}, pooling);
    if (!net->classify(at::zeros({1, 3, input.prep.size, input.prep.size})).defined()) return {};
  }
  return load_tap(space, 0, input.identities, left_out, input.samples);
}

}  // namespace kgain::core
