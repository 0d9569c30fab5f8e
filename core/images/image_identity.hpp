// Image identity: what a stored feature row was computed from, by content, not by name.
//
// A file's identity is a hash of its bytes; a sample whose pixels a dataset keeps
// (Dataset::read_pixels) is identified by its pixels, or by the identity the dataset gives
// (Dataset::content_identity: a slide tile by slide content and coordinates). The path is not
// part of it: features depend on the pixels only, so two studies that name the same files
// differently (another config folder, a copy of the data set) share their stored features. An
// image that cannot be read gets an identity from its path and the reason; it is never stored.
// The feature store keys every row on it (feature_store.hpp), so an image replaced in place is
// computed again, alone. Reading every image once more costs far less than decoding it (the
// files are small and then in the page cache for the decoder).
// Threads: image_identities runs `threads` workers itself and calls read_pixels from them.
#pragma once

#include <cstdint>
#include <vector>

#include <kgain/dataset.hpp>

namespace kgain::core {

std::vector<std::uint64_t> image_identities(const std::vector<Sample>& samples, const Dataset* pixel_source,
                                            int threads);

}  // namespace kgain::core
