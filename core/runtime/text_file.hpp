// Whole files read as text: configs and the files of a run directory. One reader, so that every
// such file gets the same guard against a forged or runaway size.
// Threads: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kgain::core {

// The largest text file kgain reads whole: a splits.csv of 10 million rows is about 1 GB.
inline constexpr std::uintmax_t max_text_file_bytes = 1ULL << 31;

// The file's bytes, or nullopt when it cannot be opened (the caller says what it was meant to
// be). Throws std::runtime_error naming the file when it is larger than `limit` bytes.
std::optional<std::string> read_text_file(const std::string& path, std::uintmax_t limit = max_text_file_bytes);

}  // namespace kgain::core
