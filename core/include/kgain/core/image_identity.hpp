// Image identity: what a cached feature row was computed from, by content, not by name.
//
// A file's identity is a hash of its path and its bytes; a sample whose pixels a dataset keeps
// (Dataset::read_pixels) is identified by its path and its pixels, or by the identity the
// dataset gives (Dataset::content_identity: a slide tile by slide content and coordinates). An image that cannot be
// read gets an identity from the reason, so fixing it changes its identity too. The cache
// keys each chunk on the identities of its images (chunk_identity), so an image replaced in
// place recomputes exactly its chunk. Reading every image once more costs far less than
// decoding it (the files are small and then in the page cache for the decoder).
// Threads: image_identities runs `threads` workers itself and calls read_pixels from them.
#pragma once

#include <cstdint>
#include <vector>

#include <kgain/dataset.hpp>

namespace kgain::core {

std::vector<std::uint64_t> image_identities(const std::vector<Sample>& samples, const Dataset* pixel_source, int threads);

// The identity of images [begin, end): what a cache chunk of them is keyed on.
std::uint64_t chunk_identity(const std::vector<std::uint64_t>& identities, std::int64_t begin, std::int64_t end);

}  // namespace kgain::core
