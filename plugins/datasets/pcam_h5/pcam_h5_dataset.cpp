// Dataset `pcam_h5`: PatchCamelyon in its official form, the HDF5 files
//   camelyonpatch_level_2_split_{train,valid,test}_x.h5   "x": uint8 [N, 96, 96, 3] (RGB patches)
//   camelyonpatch_level_2_split_{train,valid,test}_y.h5   "y": uint8 [N, 1, 1, 1] (1: tumour in the centre 32x32 px)
// and, when present, camelyonpatch_level_2_split_<split>_meta.csv (column `wsi`: the source slide,
// used as the group). Download: github.com/basveeling/pcam (gunzip the .h5.gz files).
//
// The labels are read at start; pixels are read one patch at a time when the core decodes, so
// memory does not grow with the 262,144 training patches. A sample's path is "<file>:<index>",
// which names the patch in splits.csv and in error messages.
//
// The files are read by kgain's own HDF5 reader (hdf5_file.hpp), not libhdf5, which fuzzing
// caught reading past its own buffers on forged files, four times (docs/trust.md). Every chunk
// is checked here: it must be stored, an unfiltered one must hold exactly a chunk's bytes, and
// a gzip-compressed one must inflate to exactly that. Filters other than gzip and shuffle (a
// no-op on bytes) are refused; plain and compact data must be exactly the dataset's size.
//
// Options: `declared_options` below (`kgain list --options pcam_h5`).
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include <zlib.h>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

#include "hdf5_file.hpp"

namespace fs = std::filesystem;

namespace {

using kgain_pcam::Hdf5Dataset;
using kgain_pcam::Hdf5File;
using kgain_pcam::StoredChunk;
using u64 = std::uint64_t;

const char* const download_hint = "PatchCamelyon's files are at github.com/basveeling/pcam (gunzip the .h5.gz files)";

// PCam's rows are 27,648 bytes; a row of 64 MB is no patch any study would use.
constexpr u64 max_row_bytes = 64ULL << 20, max_chunk_bytes = 64ULL << 20, max_rows = 1ULL << 32;

struct Array {
  std::shared_ptr<const Hdf5File> file;
  Hdf5Dataset d;
  std::vector<StoredChunk> stored;  // chunked: every stored chunk, by index
  u64 row_bytes = 0, chunk_bytes = 0;
  int deflate = -1;  // the gzip filter's place in the pipeline, or -1
  const std::string& path() const { return file->path(); }
};

// The last chunk read, inflated (patches are read in order, and a chunk may hold several).
struct ChunkCache {
  const Array* array = nullptr;
  u64 index = 0;
  std::vector<std::uint8_t> data;
};

// The place of the gzip filter in a chunked dataset's pipeline (-1: none); any filter but gzip
// and shuffle (which leaves single bytes as they are) is refused.
int gzip_filter(const Array& a) {
  if (a.d.filters.size() > 32)  // a chunk's record of skipped filters has 32 bits
    throw std::runtime_error(a.path() + ": dataset '" + a.d.name + "' declares " + std::to_string(a.d.filters.size()) +
                             " filters; HDF5 allows 32 (a damaged or forged file)");
  int deflate = -1;
  for (std::size_t i = 0; i < a.d.filters.size(); ++i) {
    if (a.d.filters[i] == 1)
      deflate = static_cast<int>(i);
    else if (a.d.filters[i] != 2)
      throw std::runtime_error(a.path() + ": dataset '" + a.d.name + "' is stored with HDF5 filter " +
                               std::to_string(a.d.filters[i]) +
                               "; kgain reads uncompressed or gzip-compressed PatchCamelyon files (rewrite it "
                               "with h5py's compression=\"gzip\")");
  }
  return deflate;
}

// Plain and compact storage must hold exactly the dataset's bytes (libhdf5 read a compact
// dataset's whole extent out of a smaller buffer, and gave plain data never written as black
// patches); chunks are bounded, and every stored one located, before anything is read.
void check_storage(Array& a, u64 data_bytes) {
  const std::string where = a.path() + ": dataset '" + a.d.name + "'";
  u64 stored = a.d.compact_data.size();
  if (a.d.storage == Hdf5Dataset::Storage::contiguous) {
    stored = a.d.address == ~u64{0} ? 0 : a.d.stored_bytes;
    if (stored != 0 && (a.d.address > a.file->size() || stored > a.file->size() - a.d.address))
      throw std::runtime_error(where + " lies past the end of the file (an incomplete download or copy?)");
  }
  if (a.d.storage != Hdf5Dataset::Storage::chunked) {
    if (stored != data_bytes)
      throw std::runtime_error(where + " stores " + std::to_string(stored) + " bytes for " +
                               std::to_string(data_bytes) + " bytes of data (an incomplete, damaged or forged file)");
    return;
  }
  u64 bytes = 1;
  for (auto c : a.d.chunk)  // bytes stays at most max + 1, so that no product wraps
    bytes = c > max_chunk_bytes ? max_chunk_bytes + 1 : std::min(bytes * c, max_chunk_bytes + 1);
  if (bytes > max_chunk_bytes)
    throw std::runtime_error(where + " is stored in chunks of " + std::to_string(bytes) +
                             " bytes; kgain reads chunks of 1 byte to 64 MB (a damaged or forged file)");
  a.chunk_bytes = bytes;
  a.deflate = gzip_filter(a);
  a.stored = a.file->chunks(a.d, 1ULL << 48);
}

Array open_array(const std::shared_ptr<const Hdf5File>& file, const char* name, std::size_t rank) {
  Array a;
  a.file = file;
  a.d = file->dataset(name);
  const std::string where = a.path() + ": dataset '" + name + "'";
  if (a.d.dims.size() != rank)
    throw std::runtime_error(where + " has " + std::to_string(a.d.dims.size()) + " dimensions, expected " +
                             std::to_string(rank));
  // Signed bytes are refused: a label of -1 is no class (libhdf5 clipped it to 0, a tumour-free
  // patch), and pixels are taken as stored bytes.
  if (a.d.type_class != 0 || a.d.type_size != 1 || a.d.type_signed || a.d.type_bit_offset != 0 ||
      a.d.type_precision != 8)
    throw std::runtime_error(where +
                             " does not hold unsigned 8-bit integers (PatchCamelyon's are uint8; rewrite it with "
                             "dtype uint8)");
  // A forged file may declare huge rows or chunks; reading one row would then inflate
  // gigabytes. Rows and chunks are bounded before anything is read.
  u64 row = 1;
  for (std::size_t d = 1; d < rank; ++d)  // row stays at most max + 1, so that no product wraps
    row = a.d.dims[d] > max_row_bytes ? max_row_bytes + 1 : std::min(row * a.d.dims[d], max_row_bytes + 1);
  if (std::find(a.d.dims.begin() + 1, a.d.dims.end(), u64{0}) != a.d.dims.end())  // else a row's size says nothing
    throw std::runtime_error(where + " declares rows with an empty dimension (a damaged or forged file)");
  if (row > max_row_bytes || a.d.dims[0] > max_rows)
    throw std::runtime_error(where + " declares rows of " + std::to_string(row) + " bytes or " +
                             std::to_string(a.d.dims[0]) +
                             " rows; PatchCamelyon's are 96 x 96 x 3 (a damaged or forged file)");
  a.row_bytes = row;
  check_storage(a, a.d.dims[0] * row);  // at most 2^32 rows of 64 MB: no wrap
  return a;
}

// The chunk of `a` at grid position `index` whose first row is `row`, inflated and checked
// (the last one is kept in `cache`).
const std::vector<std::uint8_t>& chunk_at(const Array& a, u64 index, u64 row, ChunkCache& cache) {
  if (cache.array == &a && cache.index == index) return cache.data;
  cache.array = nullptr;
  const std::string where = a.path() + ": the chunk at row " + std::to_string(row);
  const auto it = std::lower_bound(a.stored.begin(), a.stored.end(), index,
                                   [](const StoredChunk& c, u64 i) { return c.index < i; });
  if (it == a.stored.end() || it->index != index)
    throw std::runtime_error(where + " is not stored (an incomplete or damaged file)");
  const bool inflate = a.deflate >= 0 && !((it->skipped >> a.deflate) & 1u);
  if (it->size > (inflate ? a.chunk_bytes + a.chunk_bytes / 8 + 1024 : a.chunk_bytes))
    throw std::runtime_error(where + " takes " + std::to_string(it->size) + " bytes for " +
                             std::to_string(a.chunk_bytes) + " bytes of data (a damaged or forged file)");
  std::vector<std::uint8_t> raw(it->size);
  a.file->read(it->address, it->size, raw.data());
  if (inflate) {
    cache.data.resize(a.chunk_bytes);
    uLongf size = static_cast<uLongf>(a.chunk_bytes);
    if (uncompress(cache.data.data(), &size, raw.data(), static_cast<uLong>(raw.size())) != Z_OK ||
        size != a.chunk_bytes)
      throw std::runtime_error(where + " is not a gzip stream of exactly " + std::to_string(a.chunk_bytes) +
                               " bytes (a damaged or forged file)");
  } else {
    if (raw.size() != a.chunk_bytes)
      throw std::runtime_error(where + " holds " + std::to_string(raw.size()) + " bytes, not " +
                               std::to_string(a.chunk_bytes) + " (a damaged or forged file)");
    cache.data = std::move(raw);
  }
  cache.array = &a;
  cache.index = index;
  return cache.data;
}

// Copies the part of one chunk (first element at `offset`) that lies in rows [first, last) and
// inside the dataset into `out` (rows [first, last), row-major), one line at a time. A line is
// the chunk's extent along dimension `inner` together with the trailing dimensions the chunk
// spans whole: PatchCamelyon's chunks of one patch copy as one line, not one per pixel.
void copy_chunk(const Array& a, const std::vector<u64>& offset, const std::vector<std::uint8_t>& data, u64 first,
                u64 last, std::uint8_t* out) {
  const auto& dims = a.d.dims;
  const auto& chunk = a.d.chunk;
  const std::size_t rank = dims.size();
  std::size_t inner = rank - 1;
  u64 tail = 1;  // elements in one step of dimension `inner`
  while (inner > 1 && chunk[inner] == dims[inner]) tail *= dims[inner--];
  const u64 width = std::min(chunk[inner], dims[inner] - offset[inner]) * tail;
  std::vector<u64> local(rank, 0);  // the line's first element within the chunk
  for (u64 source = 0;; source += chunk[inner] * tail) {
    const u64 row = offset[0] + local[0];
    bool inside = row >= first && row < last;
    for (std::size_t d = 1; d < inner && inside; ++d) inside = offset[d] + local[d] < dims[d];
    if (inside) {
      u64 target = row - first;
      for (std::size_t d = 1; d <= inner; ++d) target = target * dims[d] + offset[d] + local[d];
      std::memcpy(out + target * tail, data.data() + source, width);
    }
    for (std::size_t d = inner;;) {  // the next line: an odometer over local[0 .. inner-1]
      if (d == 0) return;
      --d;
      if (++local[d] < chunk[d]) break;
      local[d] = 0;
    }
  }
}

// Moves `offset` to the next chunk of the same rows (along dimensions 1 .. rank-1); false, with
// those coordinates back at 0, after the last.
bool next_chunk_in_rows(const Array& a, std::vector<u64>& offset) {
  for (std::size_t d = offset.size() - 1; d >= 1; --d) {
    offset[d] += a.d.chunk[d];
    if (offset[d] < a.d.dims[d]) return true;
    offset[d] = 0;
  }
  return false;
}

// The grid position of the chunk whose first element is at `offset`.
u64 chunk_index(const Array& a, const std::vector<u64>& offset) {
  u64 index = 0;
  for (std::size_t d = 0; d < offset.size(); ++d) {
    const u64 grid = a.d.dims[d] / a.d.chunk[d] + (a.d.dims[d] % a.d.chunk[d] != 0);
    index = index * grid + offset[d] / a.d.chunk[d];
  }
  return index;
}

// Rows [first, first + count) of `a` into `out` (count x row bytes).
void read_rows(const Array& a, u64 first, u64 count, std::uint8_t* out, ChunkCache& cache) {
  if (a.d.storage == Hdf5Dataset::Storage::compact) {
    std::memcpy(out, a.d.compact_data.data() + first * a.row_bytes, count * a.row_bytes);
    return;
  }
  if (a.d.storage == Hdf5Dataset::Storage::contiguous) {
    a.file->read(a.d.address + first * a.row_bytes, count * a.row_bytes, out);
    return;
  }
  std::vector<u64> offset(a.d.dims.size(), 0);
  for (offset[0] = first / a.d.chunk[0] * a.d.chunk[0]; offset[0] < first + count; offset[0] += a.d.chunk[0]) {
    std::fill(offset.begin() + 1, offset.end(), 0);
    do copy_chunk(a, offset, chunk_at(a, chunk_index(a, offset), offset[0], cache), first, first + count, out);
    while (next_chunk_in_rows(a, offset));
  }
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  for (char c : line) {
    if (c == ',')
      out.emplace_back();
    else if (c != '\r')
      out.back() += c;
  }
  return out;
}

class PcamH5Dataset : public kgain::Dataset {
 public:
  static constexpr std::array declared_options{
      kgain::option::path("root", nullptr, "the folder with the `camelyonpatch_level_2_split_*` files").required(),
      kgain::option::strings("splits", nullptr, "which splits; a listed split whose two files are missing is an error")
          .computed("every split whose two files exist")
          .one_of("train|valid|test"),
  };

  explicit PcamH5Dataset(const kgain::Options& options) {
    root_ = options.require_path("root");
    if (!fs::is_directory(root_))
      throw options.error("root", "the folder '" + root_ + "' does not exist; " + download_hint);
    const bool listed = options.has("splits");
    const auto splits = options.get_string_list("splits", {"train", "valid", "test"});
    for (const auto& split : splits) {
      if (split != "train" && split != "valid" && split != "test")
        throw options.error("splits", "unknown split '" + split + "': use train, valid or test");
      const std::string stem = root_ + "/camelyonpatch_level_2_split_" + split;
      const bool present = fs::exists(stem + "_x.h5") && fs::exists(stem + "_y.h5");
      if (!present) {
        if (listed)
          throw options.error("splits",
                              "'" + stem + "_x.h5' and '" + stem + "_y.h5' are both needed; " + download_hint);
        continue;
      }
      load_split(split, stem);
    }
    if (parts_.empty())
      throw options.error("root", "no camelyonpatch_level_2_split_<train|valid|test>_{x,y}.h5 files in '" + root_ +
                                      "'; " + download_hint);
  }

  std::vector<std::string> class_names() const override { return {"0_no_tumor", "1_tumor"}; }
  std::vector<kgain::Sample> samples() const override { return samples_; }
  std::string description() const override { return "PatchCamelyon HDF5 " + root_; }

  bool read_pixels(const kgain::Sample& sample, kgain::RgbImage& out) const override {
    const auto colon = sample.path.rfind(':');
    const auto it = colon == std::string::npos ? parts_.end() : parts_.find(sample.path.substr(0, colon));
    if (it == parts_.end()) throw std::runtime_error("not a patch of this dataset");
    const Array& x = it->second;
    const u64 index = std::stoull(sample.path.substr(colon + 1));
    if (index >= x.d.dims[0]) throw std::runtime_error("patch index out of range");
    const int h = static_cast<int>(x.d.dims[1]), w = static_cast<int>(x.d.dims[2]);
    out.height = h;
    out.width = w;
    out.pixels.resize(static_cast<std::size_t>(h) * w * 3);
    std::lock_guard<std::mutex> lock(mutex_);  // for cache_
    read_rows(x, index, 1, out.pixels.data(), cache_);
    return true;
  }

 private:
  static std::shared_ptr<const Hdf5File> open_file(const std::string& path) {
    try {
      return std::make_shared<const Hdf5File>(path);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(e.what() + std::string("; ") + download_hint);
    }
  }

  void load_split(const std::string& split, const std::string& stem) {
    const std::string x_path = stem + "_x.h5", y_path = stem + "_y.h5";
    Array x = open_array(open_file(x_path), "x", 4);
    if (x.d.dims[3] != 3)
      throw std::runtime_error(x_path + ": patches have " + std::to_string(x.d.dims[3]) +
                               " channels, expected 3 (RGB)");
    Array y = open_array(open_file(y_path), "y", 4);
    if (y.d.dims[0] != x.d.dims[0])
      throw std::runtime_error(y_path + " has " + std::to_string(y.d.dims[0]) + " labels for " +
                               std::to_string(x.d.dims[0]) + " patches in " + x_path);
    if (x.d.dims[0] == 0) throw std::runtime_error(x_path + " holds no patches");
    if (y.d.dims[1] * y.d.dims[2] * y.d.dims[3] != 1)
      throw std::runtime_error(y_path + ": labels of shape " + std::to_string(y.d.dims[1]) + " x " +
                               std::to_string(y.d.dims[2]) + " x " + std::to_string(y.d.dims[3]) +
                               "; PatchCamelyon's are 1 x 1 x 1");
    std::vector<std::uint8_t> labels(y.d.dims[0]);
    ChunkCache cache;
    read_rows(y, 0, y.d.dims[0], labels.data(), cache);
    const std::size_t per_label = labels.size() / y.d.dims[0];
    const std::vector<std::string> groups = read_groups(stem + "_meta.csv", x.d.dims[0]);
    for (u64 i = 0; i < x.d.dims[0]; ++i) {
      const int label = labels[i * per_label];
      if (label > 1)
        throw std::runtime_error(y_path + ": label " + std::to_string(label) + " at " + std::to_string(i) +
                                 " (expected 0 or 1)");
      samples_.push_back({x_path + ":" + std::to_string(i), label, groups.empty() ? "" : groups[i], split});
    }
    parts_.emplace(x_path, std::move(x));
  }

  // The `wsi` column of the meta file (one row per patch), or nothing when there is none. Every
  // row needs one: a patch without its slide would be a group of its own, free to straddle a
  // split with the slide's other patches. Line ends may be CRLF, the header may carry a
  // byte-order mark (a file saved by a spreadsheet).
  static std::vector<std::string> read_groups(const std::string& path, u64 n) {
    std::ifstream in(path);
    if (!in) return {};
    std::string line;
    const auto next_line = [&] {
      if (!std::getline(in, line)) return false;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    };
    next_line();
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    const auto header = split_csv(line);
    std::size_t column = header.size();
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == "wsi") column = i;
    if (column == header.size()) throw std::runtime_error(path + ": no 'wsi' column (the slide of each patch)");
    // The official files begin with pandas' unnamed index column (0, 1, 2, ...): rows that no
    // longer count up were reordered (sorted in a spreadsheet), and each patch would get
    // another patch's slide.
    const bool indexed = header.size() > 1 && header[0].empty();
    std::vector<std::string> groups;
    for (std::size_t line_no = 2; next_line(); ++line_no) {
      if (line.empty()) continue;
      const auto fields = split_csv(line);
      if (column >= fields.size() || fields[column].find_first_not_of(" \t") == std::string::npos)
        throw std::runtime_error(path + ":" + std::to_string(line_no) +
                                 ": no slide in the 'wsi' field; every patch needs the slide it was cut from");
      if (indexed && fields[0] != std::to_string(groups.size()))
        throw std::runtime_error(path + ":" + std::to_string(line_no) + ": the row of patch '" + fields[0] +
                                 "' where patch " + std::to_string(groups.size()) +
                                 "'s is expected; the rows must stay in the order of the patches (the file's "
                                 "first column counts them from 0)");
      groups.push_back(fields[column]);
    }
    if (groups.size() != n)
      throw std::runtime_error(path + " has " + std::to_string(groups.size()) + " rows for " + std::to_string(n) +
                               " patches");
    return groups;
  }

  std::string root_;
  std::map<std::string, Array> parts_;  // x file path -> open array
  std::vector<kgain::Sample> samples_;
  mutable std::mutex mutex_;
  mutable ChunkCache cache_;  // guarded by mutex_
};

}  // namespace

KGAIN_LIBRARY("pcam_h5", kgain::make_plugin<PcamH5Dataset>("pcam_h5", "1.0.0",
                                                           "PatchCamelyon's official HDF5 files, read patch by patch"))
