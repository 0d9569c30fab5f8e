#include "extract/durable_file.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace kgain::core {
namespace {

std::string unique_temporary(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error("cannot write " + path + ": " + what + " (" + std::strerror(errno) +
                           "; disk full or no permission?)");
}

void sync_folder(const std::string& path) {
  const std::string folder = fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // some filesystems cannot open folders; the rename itself is still atomic
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<ByteSpan>& pieces) {
  const std::string tmp = unique_temporary(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create the temporary file", tmp);
  for (const auto& piece : pieces) {
    const char* p = static_cast<const char*>(piece.data);
    std::size_t left = piece.size;
    while (left > 0) {
      const ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int saved = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        errno = saved;
        fail("write failed", tmp);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail("fsync failed", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    fail("rename failed", path);
  }
  sync_folder(path);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, std::vector<ByteSpan>{{text.data(), text.size()}});
}

int remove_stale_temporaries(const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return 0;
  int removed = 0;
  std::vector<fs::path> stale;
  for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file(ec) && it->path().filename().string().find(".tmp.") != std::string::npos)
      stale.push_back(it->path());
  for (const auto& p : stale)
    if (fs::remove(p, ec)) ++removed;
  return removed;
}

}  // namespace kgain::core
