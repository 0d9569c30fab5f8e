// Durable, atomic file writes: every file kgain writes for later use (result files, feature
// store segments and indexes) is written to a temporary file of a unique name, flushed to the disk
// (fsync), renamed over the target and the folder synced. A crash or power loss leaves either
// the old file or the new one, never a mix, and two writers never share a temporary file.
// Threads: safe to call from several threads for different targets.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace kgain::core {

struct ByteSpan {
  const void* data;
  std::size_t size;
};

// Writes the pieces, in order, as the new content of `path`. Throws std::runtime_error naming
// the file when it cannot (disk full, no permission).
void write_file_atomically(const std::string& path, const std::vector<ByteSpan>& pieces);
void write_file_atomically(const std::string& path, const std::string& text);

// Removes temporary files that killed writers left under `folder` (names with ".tmp."), and
// returns how many. Call only while no other writer can be at work there (the run lock).
int remove_stale_temporaries(const std::string& folder);

}  // namespace kgain::core
