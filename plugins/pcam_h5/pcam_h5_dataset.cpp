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
// Filtered chunked datasets (PatchCamelyon's are chunked and gzip-compressed) are read chunk by
// chunk by this plugin, not by H5Dread: libhdf5 1.10 (Debian 12's) trusts a chunk's filter output to
// fill the chunk, so a gzip stream that inflates to fewer bytes, or a chunk declared wider than
// the dataset, makes H5Dread copy from past the end of its own buffer: pixels from unrelated
// memory, with no error (found by fuzz_pcam_h5, docs/trust.md). H5Dread_chunk gives the stored
// bytes without running any filter; zlib inflates them here, and a chunk must come out at
// exactly its size. Filters other than gzip and shuffle (a no-op on bytes) are refused, and so
// are virtual datasets and external storage (data in other files the HDF5 file names).
// Unfiltered chunks are left to H5Dread once each is known to be stored: libhdf5 reads their
// nominal size from the file, whereas H5Dread_chunk would read the length the chunk index
// records, which no cheap call reports (H5Dget_chunk_info_by_coord walks the whole index).
//
// The file's structure (object headers, name heaps, chunk indexes) is still parsed by libhdf5,
// which a forged file can crash (fuzz_pcam_h5: a copy from a null pointer in H5Dopen2). So each
// split is first opened, its labels read, every chunk of x located and its first patch read in
// a child process; a crash there is an error naming the files, and this process opens only
// files the child got through.
//
// Options:
//   root    (string, required) the folder with the files
//   splits  (array of strings, default: every split whose two files exist) train, valid, test
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <kgain/dataset.hpp>
#include <kgain/plugin.hpp>

namespace fs = std::filesystem;

namespace {

const char* const download_hint = "PatchCamelyon's files are at github.com/basveeling/pcam (gunzip the .h5.gz files)";

// Owns one HDF5 handle.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    std::swap(id_, o.id_);
    std::swap(close_, o.close_);
    return *this;
  }
  Handle(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// PCam's rows are 27,648 bytes; a row of 64 MB is no patch any study would use.
constexpr hsize_t max_row_bytes = 64ULL << 20, max_chunk_bytes = 64ULL << 20;

struct Array {
  std::string path;
  Handle file{-1, H5Fclose};
  Handle dataset{-1, H5Dclose};
  std::vector<hsize_t> dims;
  std::vector<hsize_t> chunk;  // chunk dimensions; empty when the data is not chunked
  hsize_t chunk_bytes = 0;
  bool filtered = false;  // chunks pass through a filter pipeline (gzip, shuffle)
  int deflate = -1;       // the gzip filter's place in the pipeline, or -1
};

// The last chunk read, inflated (patches are read in order, and a chunk may hold several).
struct ChunkCache {
  hid_t dataset = -1;
  std::vector<hsize_t> offset;
  std::vector<std::uint8_t> data;
};

// The place of the gzip filter in a chunked dataset's pipeline (-1: none); any filter but gzip
// and shuffle (which leaves single bytes as they are) is refused.
int gzip_filter(hid_t plist, const std::string& path, const char* name) {
  int deflate = -1;
  const int filters = H5Pget_nfilters(plist);
  if (filters > 32)  // a chunk's record of skipped filters has 32 bits
    throw std::runtime_error(path + ": dataset '" + name + "' declares " + std::to_string(filters) +
                             " filters; HDF5 allows 32 (a damaged or forged file)");
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0, config = 0;
    std::size_t values = 0;
    char filter_name[64] = {0};
    const H5Z_filter_t filter = H5Pget_filter2(plist, static_cast<unsigned>(i), &flags, &values, nullptr,
                                               sizeof filter_name, filter_name, &config);
    if (filter == H5Z_FILTER_DEFLATE)
      deflate = i;
    else if (filter != H5Z_FILTER_SHUFFLE)
      throw std::runtime_error(path + ": dataset '" + name + "' is stored with HDF5 filter " + std::to_string(filter) +
                               "; kgain reads uncompressed or gzip-compressed PatchCamelyon files (rewrite it "
                               "with h5py's compression=\"gzip\")");
  }
  return deflate;
}

// Where the data lives: plain, compact or chunked storage in this file, nothing else; chunks
// are bounded before anything is read, and plain or compact storage must hold exactly the
// dataset's `data_bytes`: libhdf5 1.10.8 reads a compact dataset's whole extent out of a buffer
// of the size its layout message records (a smaller size: pixels from other memory, exit
// status 0), and gives plain data never written as its fill value (black patches).
void check_storage(Array& a, const std::string& path, const char* name, hsize_t data_bytes) {
  Handle plist(H5Dget_create_plist(a.dataset.get()), H5Pclose);
  const H5D_layout_t layout = H5Pget_layout(plist.get());
  if (layout != H5D_CONTIGUOUS && layout != H5D_COMPACT && layout != H5D_CHUNKED)
    throw std::runtime_error(path + ": dataset '" + name +
                             "' is virtual or of an unknown storage layout; PatchCamelyon's are plain datasets");
  if (H5Pget_external_count(plist.get()) != 0)
    throw std::runtime_error(path + ": dataset '" + name +
                             "' keeps its data in external files; PatchCamelyon's are stored in the file itself");
  if (layout != H5D_CHUNKED) {
    const hsize_t stored = H5Dget_storage_size(a.dataset.get());
    if (stored != data_bytes)
      throw std::runtime_error(path + ": dataset '" + name + "' stores " + std::to_string(stored) + " bytes for " +
                               std::to_string(data_bytes) + " bytes of data (an incomplete, damaged or forged file)");
    return;
  }
  std::vector<hsize_t> chunk(a.dims.size());
  if (H5Pget_chunk(plist.get(), static_cast<int>(chunk.size()), chunk.data()) != static_cast<int>(chunk.size()))
    throw std::runtime_error(path + ": dataset '" + name +
                             "' has chunks of another rank than its own (a damaged file)");
  hsize_t bytes = 1;
  for (auto c : chunk)  // bytes stays at most max + 1, so that no product wraps
    bytes = c == 0 || c > max_chunk_bytes ? max_chunk_bytes + 1 : std::min(bytes * c, max_chunk_bytes + 1);
  if (bytes > max_chunk_bytes)
    throw std::runtime_error(path + ": dataset '" + name + "' is stored in chunks of " + std::to_string(bytes) +
                             " bytes; kgain reads chunks of 1 byte to 64 MB (a damaged or forged file)");
  a.chunk = chunk;
  a.chunk_bytes = bytes;
  a.deflate = gzip_filter(plist.get(), path, name);
  a.filtered = H5Pget_nfilters(plist.get()) > 0;
}

Array open_array(const std::string& path, const char* name, std::size_t rank) {
  Array a;
  a.path = path;
  a.file = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!a.file.valid())
    throw std::runtime_error(path + ": cannot open as an HDF5 file (corrupt, or still gzipped?); " + download_hint);
  a.dataset = Handle(H5Dopen2(a.file.get(), name, H5P_DEFAULT), H5Dclose);
  if (!a.dataset.valid())
    throw std::runtime_error(path + ": has no dataset '" + name + "' (not a PatchCamelyon file?)");
  Handle space(H5Dget_space(a.dataset.get()), H5Sclose);
  const int r = H5Sget_simple_extent_ndims(space.get());
  if (r != static_cast<int>(rank))
    throw std::runtime_error(path + ": dataset '" + name + "' has " + std::to_string(r) + " dimensions, expected " +
                             std::to_string(rank));
  a.dims.resize(rank);
  H5Sget_simple_extent_dims(space.get(), a.dims.data(), nullptr);
  Handle type(H5Dget_type(a.dataset.get()), H5Tclose);
  // Signed bytes are refused: H5Dread converts them to unsigned by clipping (a label of -1 read
  // as 0, a tumour-free patch, with exit status 0), and chunks are read as stored bytes.
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1 ||
      H5Tget_sign(type.get()) != H5T_SGN_NONE)
    throw std::runtime_error(path + ": dataset '" + name +
                             "' does not hold unsigned 8-bit integers (PatchCamelyon's are uint8; rewrite it with "
                             "dtype uint8)");
  // A forged file may declare huge rows or chunks; reading one row would then inflate
  // gigabytes. Rows and chunks are bounded before anything is read.
  hsize_t row = 1;
  for (std::size_t d = 1; d < rank; ++d)  // row stays at most max + 1, so that no product wraps
    row = a.dims[d] > max_row_bytes ? max_row_bytes + 1 : std::min(row * a.dims[d], max_row_bytes + 1);
  if (std::find(a.dims.begin() + 1, a.dims.end(), hsize_t{0}) != a.dims.end())  // else a row's size says nothing
    throw std::runtime_error(path + ": dataset '" + name +
                             "' declares rows with an empty dimension (a damaged or forged file)");
  if (row > max_row_bytes || a.dims[0] > (1ULL << 32))
    throw std::runtime_error(path + ": dataset '" + name + "' declares rows of " + std::to_string(row) + " bytes or " +
                             std::to_string(a.dims[0]) +
                             " rows; PatchCamelyon's are 96 x 96 x 3 (a damaged or forged file)");
  check_storage(a, path, name, a.dims[0] * row);  // at most 2^32 rows of 64 MB: no wrap
  return a;
}

// The chunk of `a` whose first element is at `offset`, inflated and checked (the last one is
// kept in `cache`).
const std::vector<std::uint8_t>& chunk_at(const Array& a, const std::vector<hsize_t>& offset, ChunkCache& cache) {
  if (cache.dataset == a.dataset.get() && cache.offset == offset) return cache.data;
  cache.dataset = -1;
  const std::string where = a.path + ": the chunk at row " + std::to_string(offset[0]);
  // For a filtered dataset, H5Dget_chunk_storage_size reports the length the chunk index
  // records, which is what H5Dread_chunk reads (the same lookup). For an unfiltered one it gives
  // the nominal chunk size instead, and a forged record made pread run past `raw` (CI's
  // fuzz_pcam_h5, 2026-12-01): those chunks are read by read_rows, never here.
  hsize_t stored = 0;
  if (!a.filtered) throw std::logic_error("chunk_at: an unfiltered dataset's chunks are read by H5Dread");
  if (H5Dget_chunk_storage_size(a.dataset.get(), offset.data(), &stored) < 0 || stored == 0)
    throw std::runtime_error(where + " is not stored (an incomplete or damaged file)");
  const bool may_inflate = a.deflate >= 0;
  if (stored > (may_inflate ? a.chunk_bytes + a.chunk_bytes / 8 + 1024 : a.chunk_bytes))
    throw std::runtime_error(where + " takes " + std::to_string(stored) + " bytes for " +
                             std::to_string(a.chunk_bytes) + " bytes of data (a damaged or forged file)");
  std::vector<std::uint8_t> raw(stored);
  std::uint32_t skipped = 0;  // bit i: filter i of the pipeline was not applied to this chunk
  if (H5Dread_chunk(a.dataset.get(), H5P_DEFAULT, offset.data(), &skipped, raw.data()) < 0)
    throw std::runtime_error(where + " cannot be read (a damaged file)");
  if (may_inflate && !((skipped >> a.deflate) & 1u)) {
    cache.data.resize(a.chunk_bytes);
    uLongf size = static_cast<uLongf>(a.chunk_bytes);
    if (uncompress(cache.data.data(), &size, raw.data(), static_cast<uLong>(stored)) != Z_OK || size != a.chunk_bytes)
      throw std::runtime_error(where + " is not a gzip stream of exactly " + std::to_string(a.chunk_bytes) +
                               " bytes (a damaged or forged file)");
  } else {
    if (stored != a.chunk_bytes)
      throw std::runtime_error(where + " holds " + std::to_string(stored) + " bytes, not " +
                               std::to_string(a.chunk_bytes) + " (a damaged or forged file)");
    cache.data = std::move(raw);
  }
  cache.dataset = a.dataset.get();
  cache.offset = offset;
  return cache.data;
}

// Copies the part of one chunk (first element at `offset`) that lies in rows [first, last) and
// inside the dataset into `out` (rows [first, last), row-major), one line at a time. A line is
// the chunk's extent along dimension `inner` together with the trailing dimensions the chunk
// spans whole: PatchCamelyon's chunks of one patch copy as one line, not one per pixel.
void copy_chunk(const Array& a, const std::vector<hsize_t>& offset, const std::vector<std::uint8_t>& data,
                hsize_t first, hsize_t last, std::uint8_t* out) {
  const std::size_t rank = a.dims.size();
  std::size_t inner = rank - 1;
  hsize_t tail = 1;  // elements in one step of dimension `inner`
  while (inner > 1 && a.chunk[inner] == a.dims[inner]) tail *= a.dims[inner--];
  const hsize_t width = std::min(a.chunk[inner], a.dims[inner] - offset[inner]) * tail;
  std::vector<hsize_t> local(rank, 0);  // the line's first element within the chunk
  for (hsize_t source = 0;; source += a.chunk[inner] * tail) {
    const hsize_t row = offset[0] + local[0];
    bool inside = row >= first && row < last;
    for (std::size_t d = 1; d < inner && inside; ++d) inside = offset[d] + local[d] < a.dims[d];
    if (inside) {
      hsize_t target = row - first;
      for (std::size_t d = 1; d <= inner; ++d) target = target * a.dims[d] + offset[d] + local[d];
      std::memcpy(out + target * tail, data.data() + source, width);
    }
    for (std::size_t d = inner;;) {  // the next line: an odometer over local[0 .. inner-1]
      if (d == 0) return;
      --d;
      if (++local[d] < a.chunk[d]) break;
      local[d] = 0;
    }
  }
}

// Moves `offset` to the next chunk of the same rows (along dimensions 1 .. rank-1); false, with
// those coordinates back at 0, after the last.
bool next_chunk_in_rows(const Array& a, std::vector<hsize_t>& offset) {
  for (std::size_t d = offset.size() - 1; d >= 1; --d) {
    offset[d] += a.chunk[d];
    if (offset[d] < a.dims[d]) return true;
    offset[d] = 0;
  }
  return false;
}

// The first row of the first chunk of rows [first, last) that is not stored, if any (H5Dread
// gives a missing chunk as the fill value: a black patch). Asks libhdf5 for each chunk in turn.
std::optional<hsize_t> missing_chunk(const Array& a, hsize_t first, hsize_t last) {
  std::vector<hsize_t> offset(a.dims.size(), 0);
  for (offset[0] = first / a.chunk[0] * a.chunk[0]; offset[0] < last; offset[0] += a.chunk[0]) {
    std::fill(offset.begin() + 1, offset.end(), 0);
    do {
      hsize_t stored = 0;
      if (H5Dget_chunk_storage_size(a.dataset.get(), offset.data(), &stored) < 0 || stored == 0) return offset[0];
    } while (next_chunk_in_rows(a, offset));
  }
  return std::nullopt;
}

// Rows [first, first + count) of `a` into `out` (count x row bytes). Plain, compact and
// unfiltered chunked data are read by H5Dread (libhdf5 reads an unfiltered chunk's nominal size
// from the file, whatever its index records); filtered chunks by chunk_at.
void read_rows(const Array& a, hsize_t first, hsize_t count, std::uint8_t* out, ChunkCache& cache) {
  const std::size_t rank = a.dims.size();
  if (a.chunk.empty() || !a.filtered) {
    if (const auto row = a.chunk.empty() ? std::nullopt : missing_chunk(a, first, first + count))
      throw std::runtime_error(a.path + ": the chunk at row " + std::to_string(*row) +
                               " is not stored (an incomplete or damaged file)");
    Handle file_space(H5Dget_space(a.dataset.get()), H5Sclose);
    std::vector<hsize_t> start(rank, 0), extent = a.dims;
    start[0] = first, extent[0] = count;
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr);
    Handle memory_space(H5Screate_simple(static_cast<int>(rank), extent.data(), nullptr), H5Sclose);
    if (H5Dread(a.dataset.get(), H5T_NATIVE_UINT8, memory_space.get(), file_space.get(), H5P_DEFAULT, out) < 0)
      throw std::runtime_error(a.path + ": HDF5 could not read rows " + std::to_string(first) + " to " +
                               std::to_string(first + count - 1) + " (a damaged file?)");
    return;
  }
  std::vector<hsize_t> offset(rank, 0);
  for (offset[0] = first / a.chunk[0] * a.chunk[0]; offset[0] < first + count; offset[0] += a.chunk[0]) {
    std::fill(offset.begin() + 1, offset.end(), 0);
    do copy_chunk(a, offset, chunk_at(a, offset, cache), first, first + count, out);
    while (next_chunk_in_rows(a, offset));
  }
}

// Runs `open` in a child process first; throws if the child dies (libhdf5 crashed on the
// files) or takes more than ten minutes. Errors that `open` throws are left to the caller,
// which then runs it itself and gets them.
template <class Open>
void survive_in_child(const std::string& files, const Open& open) {
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) return;  // no process to spare: the files are opened in this one only
  if (child == 0) {
    // The host's crash handlers (a test framework's, a sanitizer's) would report the crash as
    // theirs: the child dies quietly and the parent reports it.
    for (int signal : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) std::signal(signal, SIG_DFL);
    try {
      open();
    } catch (...) {
    }
    ::_exit(0);
  }
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 10) {
    const pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done == child) break;
    if (done < 0 && errno != EINTR) return;
    if (waited_ms >= 600'000) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      throw std::runtime_error(files +
                               ": libhdf5 did not finish reading the files' structure in 10 minutes (a "
                               "damaged or forged HDF5 file?); kgain did not open them");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  const std::string how = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                              : "exit status " + std::to_string(WEXITSTATUS(status));
  throw std::runtime_error(files + ": libhdf5 crashed reading the files' structure (" + how +
                           ", in a child process): a damaged or forged HDF5 file, which kgain did not open; " +
                           download_hint);
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
  explicit PcamH5Dataset(const kgain::Options& options) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become exceptions with a message, not stderr dumps
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
      survive_in_child(stem + "_{x,y}.h5", [&] {
        load_split(split, stem);
        const Array& x = parts_.at(stem + "_x.h5");
        if (!x.chunk.empty())
          missing_chunk(x, 0, x.dims[0]);  // walks the chunk index (a missing chunk: an error when its patch is read)
        std::vector<std::uint8_t> patch(static_cast<std::size_t>(x.dims[1] * x.dims[2] * x.dims[3]));
        ChunkCache cache;
        read_rows(x, 0, 1, patch.data(), cache);  // the path every patch takes, once
      });
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
    const hsize_t index = std::stoull(sample.path.substr(colon + 1));
    if (index >= x.dims[0]) throw std::runtime_error("patch index out of range");
    const int h = static_cast<int>(x.dims[1]), w = static_cast<int>(x.dims[2]);
    out.height = h;
    out.width = w;
    out.pixels.resize(static_cast<std::size_t>(h) * w * 3);
    std::lock_guard<std::mutex> lock(mutex_);  // Debian's serial HDF5 is not thread-safe
    read_rows(x, index, 1, out.pixels.data(), cache_);
    return true;
  }

 private:
  void load_split(const std::string& split, const std::string& stem) {
    const std::string x_path = stem + "_x.h5", y_path = stem + "_y.h5";
    Array x = open_array(x_path, "x", 4);
    if (x.dims[3] != 3)
      throw std::runtime_error(x_path + ": patches have " + std::to_string(x.dims[3]) + " channels, expected 3 (RGB)");
    Array y = open_array(y_path, "y", 4);
    if (y.dims[0] != x.dims[0])
      throw std::runtime_error(y_path + " has " + std::to_string(y.dims[0]) + " labels for " +
                               std::to_string(x.dims[0]) + " patches in " + x_path);
    if (x.dims[0] == 0) throw std::runtime_error(x_path + " holds no patches");
    if (y.dims[1] * y.dims[2] * y.dims[3] != 1)
      throw std::runtime_error(y_path + ": labels of shape " + std::to_string(y.dims[1]) + " x " +
                               std::to_string(y.dims[2]) + " x " + std::to_string(y.dims[3]) +
                               "; PatchCamelyon's are 1 x 1 x 1");
    std::vector<std::uint8_t> labels(y.dims[0]);
    ChunkCache cache;
    read_rows(y, 0, y.dims[0], labels.data(), cache);
    const std::size_t per_label = labels.size() / y.dims[0];
    const std::vector<std::string> groups = read_groups(stem + "_meta.csv", x.dims[0]);
    for (hsize_t i = 0; i < x.dims[0]; ++i) {
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
  static std::vector<std::string> read_groups(const std::string& path, hsize_t n) {
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
