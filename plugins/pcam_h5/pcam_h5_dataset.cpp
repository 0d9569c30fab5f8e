// Dataset `pcam_h5`: PatchCamelyon in its official form, the HDF5 files
//   camelyonpatch_level_2_split_{train,valid,test}_x.h5   "x": uint8 [N, 96, 96, 3] (RGB patches)
//   camelyonpatch_level_2_split_{train,valid,test}_y.h5   "y": uint8 [N, 1, 1, 1] (1: tumour in the centre 32x32 px)
// and, when present, camelyonpatch_level_2_split_<split>_meta.csv (column `wsi`: the source slide,
// used as the group). Download: github.com/basveeling/pcam (gunzip the .h5.gz files).
//
// The labels are read at start; pixels are read one patch at a time (an HDF5 hyperslab) when
// the core decodes, so memory does not grow with the 262,144 training patches. A sample's path
// is "<file>:<index>", which names the patch in splits.csv and in error messages.
//
// Options:
//   root    (string, required) the folder with the files
//   splits  (array of strings, default: every split whose two files exist) train, valid, test
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <hdf5.h>

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
  Handle file{-1, H5Fclose};
  Handle dataset{-1, H5Dclose};
  std::vector<hsize_t> dims;
};

Array open_array(const std::string& path, const char* name, std::size_t rank) {
  Array a;
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
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1)
    throw std::runtime_error(path + ": dataset '" + name + "' does not hold 8-bit integers");
  // A forged file may declare huge rows or chunks; reading one row would then inflate
  // gigabytes. Rows and chunks are bounded before anything is read.
  hsize_t row = 1;
  for (std::size_t d = 1; d < rank; ++d) row = a.dims[d] > max_row_bytes ? max_row_bytes + 1 : row * a.dims[d];
  if (row > max_row_bytes || a.dims[0] > (1ULL << 32))
    throw std::runtime_error(path + ": dataset '" + name + "' declares rows of " + std::to_string(row) + " bytes or " +
                             std::to_string(a.dims[0]) +
                             " rows; PatchCamelyon's are 96 x 96 x 3 (a damaged or forged file)");
  Handle plist(H5Dget_create_plist(a.dataset.get()), H5Pclose);
  if (H5Pget_layout(plist.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(rank);
    H5Pget_chunk(plist.get(), static_cast<int>(rank), chunk.data());
    hsize_t bytes = 1;
    for (auto c : chunk) bytes = c > max_chunk_bytes ? max_chunk_bytes + 1 : bytes * c;
    if (bytes > max_chunk_bytes)
      throw std::runtime_error(path + ": dataset '" + name + "' is stored in chunks of " + std::to_string(bytes) +
                               " bytes; kgain reads chunks of at most 64 MB (a damaged or forged file)");
  }
  return a;
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
    Handle file_space(H5Dget_space(x.dataset.get()), H5Sclose);
    const hsize_t start[4] = {index, 0, 0, 0}, count[4] = {1, x.dims[1], x.dims[2], x.dims[3]};
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    Handle memory_space(H5Screate_simple(4, count, nullptr), H5Sclose);
    if (H5Dread(x.dataset.get(), H5T_NATIVE_UINT8, memory_space.get(), file_space.get(), H5P_DEFAULT,
                out.pixels.data()) < 0)
      throw std::runtime_error("HDF5 could not read the patch (a damaged file?)");
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
    if (H5Dread(y.dataset.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels.data()) < 0)
      throw std::runtime_error(y_path + ": cannot read the labels");
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

  // The `wsi` column of the meta file (one row per patch), or nothing when there is none.
  static std::vector<std::string> read_groups(const std::string& path, hsize_t n) {
    std::ifstream in(path);
    if (!in) return {};
    std::string line;
    std::getline(in, line);
    const auto header = split_csv(line);
    std::size_t column = header.size();
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == "wsi") column = i;
    if (column == header.size()) throw std::runtime_error(path + ": no 'wsi' column (the slide of each patch)");
    std::vector<std::string> groups;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto fields = split_csv(line);
      if (column >= fields.size())
        throw std::runtime_error(path + ": row " + std::to_string(groups.size() + 2) + " has no 'wsi' field");
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
};

}  // namespace

KGAIN_LIBRARY("pcam_h5", kgain::make_plugin<PcamH5Dataset>("pcam_h5", "1.0.0",
                                                           "PatchCamelyon's official HDF5 files, read patch by patch"))
