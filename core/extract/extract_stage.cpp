#include "extract/extract_stage.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "cluster/cluster.hpp"
#include "cluster/wire.hpp"
#include "extract/feature_space_key.hpp"
#include "plan/study_plan.hpp"
#include "runtime/allocator.hpp"

namespace kgain::core {
namespace {

// Root adds up what the ranks extracted; every rank learns every image that could not be decoded
// (another rank's bad image has no features for this rank to read).
void merge_extraction_stats(ExtractionStats& stats) {
  const Cluster& cluster = Cluster::get();
  Packer out;
  out.u64(static_cast<std::uint64_t>(stats.images_decoded)),
      out.u64(static_cast<std::uint64_t>(stats.images_forwarded));
  out.u64(static_cast<std::uint64_t>(stats.segments_written)), out.u64(stats.bad_images.size());
  for (const auto& [index, reason] : stats.bad_images) out.u64(static_cast<std::uint64_t>(index)), out.text(reason);
  const auto all = cluster.gather(out.bytes());
  Packer merged;
  if (cluster.root()) {
    stats.bad_images.clear();
    stats.images_decoded = stats.images_forwarded = stats.segments_written = 0;
    for (const auto& bytes : all) {
      Unpacker in(bytes);
      stats.images_decoded += static_cast<std::int64_t>(in.u64());
      stats.images_forwarded += static_cast<std::int64_t>(in.u64());
      stats.segments_written += static_cast<std::int64_t>(in.u64());
      for (std::uint64_t n = in.u64(); n > 0; --n) {
        const auto index = static_cast<std::int64_t>(in.u64());
        stats.bad_images.push_back({index, in.text()});
      }
    }
    std::sort(stats.bad_images.begin(), stats.bad_images.end());
    merged.u64(stats.bad_images.size());
    for (const auto& [index, reason] : stats.bad_images)
      merged.u64(static_cast<std::uint64_t>(index)), merged.text(reason);
  }
  std::string bad = merged.bytes();
  cluster.broadcast(bad);
  if (cluster.root()) return;
  Unpacker in(bad);
  stats.bad_images.clear();
  for (std::uint64_t n = in.u64(); n > 0; --n) {
    const auto index = static_cast<std::int64_t>(in.u64());
    stats.bad_images.push_back({index, in.text()});
  }
}

}  // namespace

ExtractionInput extraction_input(const Config& config, const StudyPlan& plan) {
  return ExtractionInput{plan.samples,      plan.identities,        plan.prep,
                         config.batch_size, config.skip_bad_images, decode_threads(config)};
}

Extraction extract_stage(const Config& config, const StudyPlan& plan, const std::string& store) {
  const Cluster& cluster = Cluster::get();
  Extraction extraction;
  cluster.together([&] { extraction.spaces = open_feature_spaces(config, plan, store); });
  ExtractionInput input = extraction_input(config, plan);
  input.share_rank = cluster.rank();
  input.share_count = cluster.size();
  if (const char* kill = std::getenv("KGAIN_TEST_KILL_RANK");
      kill && std::atoi(kill) == cluster.rank() && std::strchr(kill, ':'))
    input.die_after_segments = std::atoll(std::strchr(kill, ':') + 1);
  cluster.together([&] {
    extract_features(*plan.backbone, plan.variants, config.pooling, input, extraction.spaces, extraction.stats);
  });
  return_free_memory();  // the networks' activations are not needed again (allocator.hpp)
  if (cluster.distributed()) {
    merge_extraction_stats(extraction.stats);
    cluster.barrier();
    // every rank's segments, for the taps each rank evaluates
    extraction.spaces = open_feature_spaces(config, plan, store);
  }
  const ExtractionStats& x = extraction.stats;
  spdlog::info(
      "features ready: {} images decoded, {} image x variant pairs forwarded, {} from the feature store, {} segments "
      "written ({:.1f} s)",
      x.images_decoded, x.images_forwarded, x.images_from_store, x.segments_written, x.seconds);
  return extraction;
}

}  // namespace kgain::core
