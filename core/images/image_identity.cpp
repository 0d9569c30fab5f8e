#include "images/image_identity.hpp"

#include <algorithm>
#include <exception>
#include <thread>

#include <kgain/util/file_hash.hpp>

namespace kgain::core {
namespace {

std::uint64_t identity_of(const Sample& sample, const Dataset* pixel_source) {
  Hash64 h;
  if (pixel_source) {
    try {
      std::uint64_t own = 0;
      if (pixel_source->content_identity(sample, own)) return h.update("dataset identity").update_u64(own).digest();
      RgbImage image;
      if (pixel_source->read_pixels(sample, image)) {
        h.update("pixels")
            .update_u64(static_cast<std::uint64_t>(image.height))
            .update_u64(static_cast<std::uint64_t>(image.width));
        return h.update(image.pixels.data(), image.pixels.size()).digest();
      }
    } catch (const std::exception& e) {
      return h.update("unreadable").update(sample.path).update(e.what()).digest();
    }
  }
  h.update("file");
  if (!hash_file(h, sample.path)) h.update("missing").update(sample.path);
  return h.digest();
}

}  // namespace

std::vector<std::uint64_t> image_identities(const std::vector<Sample>& samples, const Dataset* pixel_source,
                                            int threads) {
  std::vector<std::uint64_t> out(samples.size());
  const std::size_t workers =
      std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(std::max(1, threads)), samples.size()));
  const auto work = [&](std::size_t worker) {
    for (std::size_t i = worker; i < samples.size(); i += workers) out[i] = identity_of(samples[i], pixel_source);
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  return out;
}

}  // namespace kgain::core
