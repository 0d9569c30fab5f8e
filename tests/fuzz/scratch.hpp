// Where a fuzz target writes each input for a reader that takes a path: a folder of its own in
// memory (/dev/shm) where the machine has one, else in the temporary directory. On disk, every
// input went to the disk: ext4 writes a truncated and rewritten file's data back when it is
// closed, 118 MB/s for fuzz_state_dict, paid in kernel time by the fuzzer and by whatever else
// shared the machine (including benchmarks run while the fuzzers were paused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace kgain::fuzz {

inline const std::string& scratch_directory();

inline void remove_scratch_directory() {
  std::error_code ignored;
  std::filesystem::remove_all(scratch_directory(), ignored);
}

// This process's scratch folder, made on first use and removed when the process exits
// normally (libFuzzer saves a failing input itself; tools/fuzz.sh removes what a stop by
// SIGUSR1, which skips exit handlers, leaves).
inline const std::string& scratch_directory() {
  static const std::string directory = [] {
    std::error_code error;
    const bool memory = std::filesystem::is_directory("/dev/shm", error);
    const std::filesystem::path base =
        memory ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
    const auto path = base / ("kgain-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path.string();
  }();
  // Registered after `directory` is complete, so it runs before the string is destroyed.
  static const bool removed_at_exit = std::atexit(remove_scratch_directory) == 0;
  (void)removed_at_exit;
  return directory;
}

// Writes the input to `name` in the scratch folder and returns the file's path.
inline std::string write_scratch_file(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const std::string path = scratch_directory() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace kgain::fuzz
