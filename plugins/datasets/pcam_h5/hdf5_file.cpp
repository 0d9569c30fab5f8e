// The reader of hdf5_file.hpp. Field layouts follow the HDF5 File Format Specification,
// version 2.0 (superblock 0/1, object header 1, B-tree 1, local heap, symbol table node,
// messages 0x0001 dataspace, 0x0003 datatype, 0x0006 link, 0x0007 external files, 0x0008
// layout, 0x000B filter pipeline, 0x0010 continuation, 0x0011 symbol table). All integers are
// little-endian; addresses and lengths are 8 bytes (the only size libhdf5 writes by default;
// others are refused).
#include "hdf5_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kgain_pcam {
namespace {

constexpr std::uint64_t undefined = ~std::uint64_t{0};
// Bounds on what one piece of metadata may claim, far above what any real file needs: a
// forged size is refused before memory is reserved for it.
constexpr std::uint64_t max_metadata_bytes = 64ULL << 20;
constexpr std::size_t max_header_chunks = 4096, max_btree_level = 64, max_rank = 32;
const char* const newer_format =
    "; kgain reads the format that h5py and libhdf5 write by default: rewrite the file with h5py without "
    "libver=\"latest\"";

// Reads little-endian fields out of one block of metadata, never past its end.
class Cursor {
 public:
  Cursor(const std::uint8_t* data, std::size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}
  std::uint64_t u(std::size_t bytes) {
    const std::uint8_t* p = take(bytes);
    std::uint64_t v = 0;
    for (std::size_t i = bytes; i-- > 0;) v = v << 8 | p[i];
    return v;
  }
  const std::uint8_t* take(std::size_t bytes) {
    if (bytes > size_ - at_) throw std::runtime_error(what_ + " ends early (a damaged or forged file)");
    const std::uint8_t* p = data_ + at_;
    at_ += bytes;
    return p;
  }
  void skip(std::size_t bytes) { take(bytes); }
  std::size_t left() const { return size_ - at_; }
  const std::string& what() const { return what_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_, at_ = 0;
  std::string what_;
};

std::string hex(std::uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(v));
  return text;
}

}  // namespace

Hdf5File::Hdf5File(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw std::runtime_error(path + ": not a regular file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  try {
    read_superblock();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

Hdf5File::~Hdf5File() { ::close(fd_); }

void Hdf5File::read(std::uint64_t address, std::uint64_t size, std::uint8_t* out) const {
  if (address > size_ || size > size_ - address)
    throw std::runtime_error(path_ + ": " + std::to_string(size) + " bytes at offset " + std::to_string(address) +
                             " lie past the end of the file (" + std::to_string(size_) +
                             " bytes): a truncated or forged file");
  while (size > 0) {
    const ssize_t got = ::pread(fd_, out, size, static_cast<off_t>(address));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      throw std::runtime_error(path_ + ": cannot read at offset " + std::to_string(address) + ": " +
                               (got < 0 ? std::strerror(errno) : "the file shrank while open"));
    out += got, address += static_cast<std::uint64_t>(got), size -= static_cast<std::uint64_t>(got);
  }
}

std::vector<std::uint8_t> Hdf5File::read_vector(std::uint64_t address, std::uint64_t size) const {
  if (size > max_metadata_bytes)
    throw std::runtime_error(path_ + ": a piece of metadata declares " + std::to_string(size) +
                             " bytes (a damaged or forged file)");
  std::vector<std::uint8_t> out(size);
  read(address, size, out.data());
  return out;
}

std::vector<std::uint8_t> Hdf5File::signed_block(std::uint64_t address, std::size_t size, const char* signature,
                                                 const std::string& what) const {
  auto bytes = read_vector(address, size);
  if (std::memcmp(bytes.data(), signature, 4) != 0)
    throw std::runtime_error(what + " is not one (a damaged or forged file)");
  return bytes;
}

std::uint64_t Hdf5File::absolute(std::uint64_t relative, const char* what) const {
  if (relative == undefined || relative > size_ || base_ > size_ - relative)
    throw std::runtime_error(path_ + ": " + what + " at " + hex(relative) + " lies outside the file (" +
                             std::to_string(size_) + " bytes): a truncated or forged file");
  return base_ + relative;
}

// The superblock sits at offset 0, 512, 1024, 2048, ... (after a user block).
void Hdf5File::read_superblock() {
  static const std::uint8_t signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  std::uint64_t at = 0;
  std::uint8_t head[8];
  for (;; at = at == 0 ? 512 : at * 2) {
    if (at + 8 > size_)
      throw std::runtime_error(path_ + ": cannot open as an HDF5 file (no HDF5 signature: damaged, or still gzipped?)");
    read(at, 8, head);
    if (std::memcmp(head, signature, 8) == 0) break;
  }
  const auto bytes = read_vector(at, std::min<std::uint64_t>(size_ - at, 136));
  Cursor c(bytes.data(), bytes.size(), path_ + ": the superblock");
  c.skip(8);
  const auto version = c.u(1);
  if (version > 1)
    throw std::runtime_error(path_ + ": HDF5 superblock version " + std::to_string(version) + newer_format);
  c.skip(3);  // free-space, root group and shared-header format versions, reserved
  c.skip(1);
  const auto offsets = c.u(1), lengths = c.u(1);
  if (offsets != 8 || lengths != 8)
    throw std::runtime_error(path_ + ": HDF5 addresses of " + std::to_string(offsets) + " bytes and lengths of " +
                             std::to_string(lengths) + "; kgain reads files with 8-byte ones (libhdf5's default)");
  c.skip(1 + 2 + 2 + 4 + (version == 1 ? 4 : 0));  // reserved, group K values, flags, chunk K
  base_ = c.u(8);
  c.skip(8);  // free-space info address
  const auto end = c.u(8);
  c.skip(8);  // driver info address
  if (base_ > size_) throw std::runtime_error(path_ + ": the superblock's base address lies past the end of the file");
  if (end > size_ - base_)
    throw std::runtime_error(path_ + ": the file holds " + std::to_string(size_) + " bytes where its superblock says " +
                             std::to_string(base_ + end) + " (an incomplete download or copy?)");
  c.skip(8);  // the root's link name offset
  root_ = read_group(absolute(c.u(8), "the root group"));
}

// Walks a version-1 B-tree from the node at `address` (absolute) and calls visit(key, child)
// for every child of every leaf: the key to the child's left (`key_bytes` bytes) and the child's
// absolute address. Levels must fall by one from parent to child, and no node is visited
// twice, so a forged tree (a cycle, a node shared by many parents) ends.
template <class Visit>
void Hdf5File::walk_btree(std::uint64_t address, int node_type, std::size_t key_bytes, const Visit& visit) const {
  std::set<std::uint64_t> seen;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> todo{{address, undefined}};  // node, expected level
  while (!todo.empty()) {
    const auto [node, expected_level] = todo.back();
    todo.pop_back();
    if (!seen.insert(node).second)
      throw std::runtime_error(path_ + ": the B-tree node at " + hex(node) + " is reached twice (a forged file)");
    const std::string node_name = path_ + ": the B-tree node at " + hex(node);
    const auto head = signed_block(node, 24, "TREE", node_name);
    Cursor h(head.data() + 4, head.size() - 4, node_name);
    if (static_cast<int>(h.u(1)) != node_type)
      throw std::runtime_error(node_name + " is of another kind (a forged file)");
    const auto level = h.u(1), entries = h.u(2);
    if (level > max_btree_level || (expected_level != undefined && level != expected_level))
      throw std::runtime_error(h.what() + " has level " + std::to_string(level) + " (a damaged or forged file)");
    const auto body = read_vector(node + head.size(), entries * (key_bytes + 8) + key_bytes);
    Cursor b(body.data(), body.size(), h.what());
    for (std::uint64_t i = 0; i < entries; ++i) {
      const std::uint8_t* key = b.take(key_bytes);
      const std::uint64_t child = absolute(b.u(8), "a B-tree child");
      if (level == 0)
        visit(key, child);
      else
        todo.emplace_back(child, level - 1);
    }
  }
}

// Calls visit(type, data cursor) for each message of the version-1 object header at `header`
// (absolute), following continuation messages.
template <class Visit>
void Hdf5File::for_each_message(std::uint64_t header, const Visit& visit) const {
  std::uint8_t prefix[16];
  read(header, sizeof prefix, prefix);
  const std::string where = path_ + ": the object header at " + hex(header);
  if (std::memcmp(prefix, "OHDR", 4) == 0) throw std::runtime_error(where + " is of version 2" + newer_format);
  Cursor p(prefix, sizeof prefix, where);
  if (p.u(1) != 1) throw std::runtime_error(where + " is not one (a damaged or forged file)");
  p.skip(1 + 2 + 4);  // reserved, message count (not needed), reference count
  std::vector<std::pair<std::uint64_t, std::uint64_t>> chunks{{header + 16, p.u(4)}};
  std::set<std::uint64_t> seen;
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    if (chunks.size() > max_header_chunks || !seen.insert(chunks[i].first).second)
      throw std::runtime_error(where + " continues in a loop (a forged file)");
    const auto bytes = read_vector(chunks[i].first, chunks[i].second);
    Cursor c(bytes.data(), bytes.size(), where);
    while (c.left() >= 8) {
      const auto type = c.u(2), size = c.u(2), flags = c.u(1);
      c.skip(3);
      Cursor data(c.take(size), size, where + ": message " + hex(type));
      if (type == 0x10) {
        const auto address = absolute(data.u(8), "an object header continuation");
        chunks.emplace_back(address, data.u(8));
      } else if (type != 0) {
        visit(static_cast<int>(type), static_cast<int>(flags), data);
      }
    }
  }
}

std::vector<Hdf5File::Link> Hdf5File::read_group(std::uint64_t header) const {
  std::vector<Link> links;
  for_each_message(header, [&](int type, int, Cursor& m) {
    if (type == 0x11) {  // symbol table: a B-tree of symbol nodes, names in a local heap
      const auto btree = m.u(8), heap = m.u(8);
      read_symbol_table(absolute(btree, "the root group's B-tree"), absolute(heap, "the root group's name heap"),
                        links);
    } else if (type == 0x06) {  // a link, kept in the header
      if (m.u(1) != 1) throw std::runtime_error(m.what() + ": a link message of an unknown version");
      const auto flags = m.u(1);
      const auto kind = flags & 0x08 ? m.u(1) : 0;
      if (flags & 0x04) m.skip(8);  // creation order
      if (flags & 0x10) m.skip(1);  // character set
      const auto length = m.u(std::size_t{1} << (flags & 3));
      if (length > m.left()) throw std::runtime_error(m.what() + ": a link name longer than its message");
      const auto* name = m.take(length);
      if (kind == 0) links.push_back({std::string(name, name + length), absolute(m.u(8), "a linked object")});
    } else if (type == 0x02) {  // link info: links beyond the header live in a fractal heap
      m.skip(2);
      if (m.left() >= 8 && m.u(8) != undefined)
        throw std::runtime_error(path_ + ": the root group keeps its links in dense storage" + newer_format);
    }
  });
  return links;
}

void Hdf5File::read_symbol_table(std::uint64_t btree, std::uint64_t heap, std::vector<Link>& links) const {
  const std::string heap_name = path_ + ": the name heap at " + hex(heap);
  const auto head = signed_block(heap, 32, "HEAP", heap_name);
  Cursor h(head.data() + 4, head.size() - 4, heap_name);
  h.skip(4);  // version, reserved
  const auto heap_size = h.u(8);
  h.skip(8);  // free list
  const auto names = read_vector(absolute(h.u(8), "the name heap's data"), heap_size);
  walk_btree(btree, 0, 8, [&](const std::uint8_t*, std::uint64_t node) {
    const std::string node_name = path_ + ": the symbol node at " + hex(node);
    const auto prefix = signed_block(node, 8, "SNOD", node_name);
    Cursor s(prefix.data() + 4, prefix.size() - 4, node_name);
    s.skip(2);  // version, reserved
    const auto count = s.u(2);
    const auto entries = read_vector(node + 8, count * 40);
    Cursor e(entries.data(), entries.size(), s.what());
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto name_at = e.u(8), object = e.u(8);
      e.skip(24);  // cache type, reserved, scratch pad
      const auto* start = names.data() + std::min<std::uint64_t>(name_at, names.size());
      const auto* end = std::find(start, names.data() + names.size(), std::uint8_t{0});
      if (name_at >= names.size() || end == names.data() + names.size())
        throw std::runtime_error(s.what() + " names an entry outside its name heap (a damaged or forged file)");
      links.push_back({std::string(start, end), absolute(object, "a group member")});
    }
  });
}

namespace {

void read_dataspace(Cursor& m, Hdf5Dataset& d) {
  const auto version = m.u(1), rank = m.u(1), flags = m.u(1);
  if (version != 1 && version != 2)
    throw std::runtime_error(m.what() + ": a dataspace of version " + std::to_string(version));
  if (version == 1) m.skip(5);
  if (version == 2 && m.u(1) == 2) throw std::runtime_error(m.what() + ": the dataset has no dataspace (null)");
  if (rank > max_rank)
    throw std::runtime_error(m.what() + ": " + std::to_string(rank) + " dimensions (HDF5 allows 32)");
  d.dims.resize(rank);
  for (auto& n : d.dims) n = m.u(8);
  (void)flags;  // maximum dimensions and permutations follow; they say nothing about the data
}

void read_datatype(Cursor& m, Hdf5Dataset& d) {
  const auto class_and_version = m.u(1), bits = m.u(3);
  d.type_class = static_cast<int>(class_and_version & 0x0f);
  d.type_size = static_cast<std::uint32_t>(m.u(4));
  if (d.type_class == 0) {  // fixed-point: byte order, padding, sign; then bit offset and precision
    d.type_signed = (bits & 0x08) != 0;
    d.type_bit_offset = static_cast<std::uint32_t>(m.u(2));
    d.type_precision = static_cast<std::uint32_t>(m.u(2));
  }
}

void read_layout(Cursor& m, Hdf5Dataset& d, const std::string& path) {
  const auto version = m.u(1);
  if (version != 3)
    throw std::runtime_error(path + ": dataset '" + d.name + "' has a layout message of version " +
                             std::to_string(version) + (version > 3 ? newer_format : "; kgain reads version 3"));
  const auto kind = m.u(1);
  if (kind == 0) {
    d.storage = Hdf5Dataset::Storage::compact;
    const auto size = m.u(2);
    const auto* data = m.take(size);
    d.compact_data.assign(data, data + size);
  } else if (kind == 1) {
    d.storage = Hdf5Dataset::Storage::contiguous;
    d.address = m.u(8);
    d.stored_bytes = m.u(8);
  } else if (kind == 2) {
    d.storage = Hdf5Dataset::Storage::chunked;
    const auto dimensions = m.u(1);  // the rank, and one more for the element size
    d.chunk_index_address = m.u(8);
    d.chunk.resize(dimensions);
    for (auto& n : d.chunk) n = m.u(4);
  } else {
    throw std::runtime_error(path + ": dataset '" + d.name + "' is virtual or of an unknown storage layout (" +
                             std::to_string(kind) + "); PatchCamelyon's are plain datasets");
  }
}

void read_filters(Cursor& m, Hdf5Dataset& d) {
  const auto version = m.u(1), count = m.u(1);
  if (version != 1 && version != 2)
    throw std::runtime_error(m.what() + ": a filter pipeline of version " + std::to_string(version));
  if (version == 1) m.skip(6);
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto id = m.u(2);
    const auto name_length = version == 1 || id >= 256 ? m.u(2) : 0;
    m.skip(2);  // flags (optional or not: every filter listed here was applied unless a chunk says otherwise)
    const auto values = m.u(2);
    m.skip(version == 1 ? (name_length + 7) / 8 * 8 : name_length);
    m.skip(4 * values + (version == 1 && values % 2 ? 4 : 0));
    d.filters.push_back(static_cast<int>(id));
  }
}

}  // namespace

Hdf5Dataset Hdf5File::dataset(const std::string& name) const {
  const auto link = std::find_if(root_.begin(), root_.end(), [&](const Link& l) { return l.name == name; });
  if (link == root_.end())
    throw std::runtime_error(path_ + ": has no dataset '" + name + "' (not a PatchCamelyon file?)");
  Hdf5Dataset d;
  d.name = name;
  int seen = 0;  // bit per message read: dataspace, datatype, layout
  for_each_message(link->header, [&](int type, int flags, Cursor& m) {
    const bool wanted = type == 0x01 || type == 0x03 || type == 0x08 || type == 0x0b;
    if (wanted && (flags & 0x02))
      throw std::runtime_error(path_ + ": dataset '" + name + "' uses a shared or committed " +
                               (type == 0x03 ? "datatype" : "message") + newer_format);
    if (type == 0x07)
      throw std::runtime_error(path_ + ": dataset '" + name +
                               "' keeps its data in external files; PatchCamelyon's are stored in the file itself");
    if (type == 0x01) read_dataspace(m, d), seen |= 1;
    if (type == 0x03) read_datatype(m, d), seen |= 2;
    if (type == 0x08) read_layout(m, d, path_), seen |= 4;
    if (type == 0x0b) read_filters(m, d);
  });
  if (seen != 7)
    throw std::runtime_error(path_ + ": '" + name + "' is not a dataset (no dataspace, datatype or layout)");
  if (d.storage == Hdf5Dataset::Storage::contiguous && d.address != undefined)
    d.address = absolute(d.address, "a dataset's data");
  if (d.storage == Hdf5Dataset::Storage::chunked) {
    if (d.chunk.size() != d.dims.size() + 1 || d.chunk.back() != d.type_size)
      throw std::runtime_error(path_ + ": dataset '" + name +
                               "' has chunks of another rank than its own (a damaged file)");
    d.chunk.pop_back();
    if (std::find(d.chunk.begin(), d.chunk.end(), 0) != d.chunk.end())
      throw std::runtime_error(path_ + ": dataset '" + name +
                               "' declares chunks with an empty dimension (a damaged file)");
    if (d.chunk_index_address != undefined) d.chunk_index_address = absolute(d.chunk_index_address, "a chunk index");
  }
  return d;
}

std::vector<StoredChunk> Hdf5File::chunks(const Hdf5Dataset& d, std::uint64_t max_chunks) const {
  if (d.storage != Hdf5Dataset::Storage::chunked) throw std::logic_error("Hdf5File::chunks: not a chunked dataset");
  const std::size_t rank = d.dims.size();
  std::vector<std::uint64_t> grid(rank);  // chunks along each dimension
  std::uint64_t total = 1;
  for (std::size_t i = 0; i < rank; ++i) {
    grid[i] = d.dims[i] / d.chunk[i] + (d.dims[i] % d.chunk[i] != 0);
    if (grid[i] != 0 && total > max_chunks / grid[i])
      throw std::runtime_error(path_ + ": dataset '" + d.name + "' is cut into more than " +
                               std::to_string(max_chunks) + " chunks (a damaged or forged file)");
    total *= grid[i];
  }
  std::vector<StoredChunk> out;
  if (total == 0 || d.chunk_index_address == undefined) return out;
  const std::size_t key_bytes = 8 + 8 * (rank + 1);
  walk_btree(d.chunk_index_address, 1, key_bytes, [&](const std::uint8_t* key, std::uint64_t address) {
    Cursor k(key, key_bytes, path_ + ": dataset '" + d.name + "': the chunk record at " + hex(address));
    StoredChunk c;
    c.size = static_cast<std::uint32_t>(k.u(4));
    c.skipped = static_cast<std::uint32_t>(k.u(4));
    c.address = address;
    for (std::size_t i = 0; i < rank; ++i) {
      const auto offset = k.u(8);
      if (offset % d.chunk[i] != 0 || offset >= d.dims[i])
        throw std::runtime_error(k.what() + " places a chunk at element " + std::to_string(offset) + " of dimension " +
                                 std::to_string(i) + ", off the dataset's grid of chunks (a damaged or forged file)");
      c.index = c.index * grid[i] + offset / d.chunk[i];
    }
    if (k.u(8) != 0) throw std::runtime_error(k.what() + " is damaged (a nonzero element offset)");
    if (c.size == 0 || address > size_ || c.size > size_ - address)
      throw std::runtime_error(k.what() + " claims " + std::to_string(c.size) +
                               " bytes that are not in the file (a truncated or forged file)");
    out.push_back(c);
  });
  std::sort(out.begin(), out.end(), [](const StoredChunk& a, const StoredChunk& b) { return a.index < b.index; });
  for (std::size_t i = 1; i < out.size(); ++i)
    if (out[i].index == out[i - 1].index)
      throw std::runtime_error(path_ + ": dataset '" + d.name + "' records one chunk twice (a damaged or forged file)");
  return out;
}

}  // namespace kgain_pcam
