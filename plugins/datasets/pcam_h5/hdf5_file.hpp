// Hdf5File: kgain's own reader for the part of the HDF5 format that PatchCamelyon's files use,
// in place of libhdf5.
//
// Why not libhdf5: Debian 12's libhdf5 (1.10.8) trusts what a file says about itself. Fuzzing
// found it reading past its own buffers on forged files four times (a short gzip chunk, a
// compact dataset smaller than its extent, an unfiltered chunk whose record disagrees with its
// size, a forged name heap that crashed H5Dopen2): other memory as pixels or labels, exit
// status 0 (docs/trust.md). This reader checks every size, address and count against the file
// before using it, and has no state a forged file can corrupt.
//
// What it reads is what h5py and libhdf5 write by default (the official files, and files
// rewritten with h5py or h5repack): superblock version 0 or 1 with 8-byte addresses and
// lengths, object headers version 1, groups as symbol tables (a B-tree and a name heap) or
// link messages, dataspace, datatype, layout (version 3: compact, contiguous, or chunked with a
// version-1 B-tree index) and filter pipeline messages. Anything else (the format that
// libver="latest" writes, shared or committed types, external or virtual storage) is refused
// with an error that says what was found and how to rewrite the file.
//
// Threads: an Hdf5File is immutable after construction; read() may be called from several
// threads at once (pread on one descriptor).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kgain_pcam {

// One stored chunk of a chunked dataset, as its index records it.
struct StoredChunk {
  std::uint64_t index = 0;    // the chunk's place in row-major order over the grid of chunks
  std::uint64_t address = 0;  // absolute file offset of its stored bytes
  std::uint32_t size = 0;     // stored bytes
  std::uint32_t skipped = 0;  // bit i: filter i of the pipeline was not applied to this chunk
};

// What the object header of one dataset says. Types: HDF5's datatype class (0: integer),
// element size in bytes, signedness, and the bits that carry the value.
struct Hdf5Dataset {
  enum class Storage { compact, contiguous, chunked };
  std::string name;
  std::vector<std::uint64_t> dims;
  int type_class = -1;
  std::uint32_t type_size = 0;
  bool type_signed = false;
  std::uint32_t type_bit_offset = 0, type_precision = 0;
  Storage storage = Storage::contiguous;
  std::vector<std::uint8_t> compact_data;                 // compact: the data, kept in the header
  std::uint64_t address = ~std::uint64_t{0};              // contiguous: absolute offset (~0: never written)
  std::uint64_t stored_bytes = 0;                         // contiguous: the size the layout records
  std::vector<std::uint64_t> chunk;                       // chunked: chunk dimensions (rank of dims)
  std::uint64_t chunk_index_address = ~std::uint64_t{0};  // chunked: the B-tree (~0: no chunk written)
  std::vector<int> filters;                               // chunked: filter ids in pipeline order (1 gzip, 2 shuffle)
};

class Hdf5File {
 public:
  // Opens `path` and reads its superblock and root group; throws std::runtime_error naming the
  // file and what is wrong with it.
  explicit Hdf5File(const std::string& path);
  ~Hdf5File();
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;

  const std::string& path() const { return path_; }
  // The dataset `name` in the root group, from its object header; throws when there is none.
  Hdf5Dataset dataset(const std::string& name) const;
  // Every stored chunk of a chunked dataset, sorted by index, each checked: inside the dataset,
  // aligned to the chunk grid, recorded once, stored inside the file. `max_chunks` bounds the
  // grid (the caller knows what a sensible dataset holds).
  std::vector<StoredChunk> chunks(const Hdf5Dataset& dataset, std::uint64_t max_chunks) const;
  // Reads `size` bytes at absolute offset `address`; throws if they are not all in the file.
  void read(std::uint64_t address, std::uint64_t size, std::uint8_t* out) const;
  std::uint64_t size() const { return size_; }

 private:
  struct Link {
    std::string name;
    std::uint64_t header = 0;  // absolute address of the object header
  };
  std::vector<std::uint8_t> read_vector(std::uint64_t address, std::uint64_t size) const;
  // `size` bytes at `address` that must begin with the 4-byte `signature` ("TREE", "HEAP", ...).
  std::vector<std::uint8_t> signed_block(std::uint64_t address, std::size_t size, const char* signature,
                                         const std::string& what) const;
  std::uint64_t absolute(std::uint64_t relative, const char* what) const;
  void read_superblock();
  std::vector<Link> read_group(std::uint64_t header) const;
  void read_symbol_table(std::uint64_t btree, std::uint64_t heap, std::vector<Link>& links) const;
  template <class Visit>
  void walk_btree(std::uint64_t address, int node_type, std::size_t key_bytes, const Visit& visit) const;
  template <class Visit>
  void for_each_message(std::uint64_t header, const Visit& visit) const;

  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t base_ = 0;  // addresses in the file are relative to this offset
  std::vector<Link> root_;
};

}  // namespace kgain_pcam
