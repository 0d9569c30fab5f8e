#include "runtime/text_file.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace kgain::core {

std::optional<std::string> read_text_file(const std::string& path, std::uintmax_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return std::nullopt;  // a folder, or a file that went away
  if (size > limit)
    throw std::runtime_error(path + " is " + std::to_string(size) + " bytes, more than the " + std::to_string(limit) +
                             " kgain reads from such a file: is it the file it should be?");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<std::size_t>(in.gcount()));  // a file that shrank while read
  return text;
}

}  // namespace kgain::core
