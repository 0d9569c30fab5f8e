// Shared by the trust tests (test_trust.cpp, issue 13; test_trust_round3.cpp, issue 34): real
// PCam patches in a folder of the test's own, and a small, fast study over them.
// Include after test_support.hpp.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "study/run.hpp"

namespace kgain::test {
namespace fs = std::filesystem;
using kgain::core::RunOptions;
using kgain::core::RunSummary;

inline std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
inline void write_bytes(const fs::path& p, const std::string& b) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << b;
}

inline fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("kgain-trust-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A folder dataset of `per_class` real PCam patches per class.
inline fs::path pcam_folder(const fs::path& top, int per_class) {
  const fs::path root = top / "data";
  for (const char* cls : {"0_no_tumor", "1_tumor"}) {
    fs::create_directories(root / cls);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(data_dir() + "/pcam-mini/" + cls)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (int i = 0; i < per_class; ++i)
      fs::copy_file(files[static_cast<std::size_t>(i)], root / cls / files[static_cast<std::size_t>(i)].filename());
  }
  return root;
}

// A small, fast study: MobileNetV1 0.25 at 64 px, one random seed, logistic probe, 2 folds.
inline std::string study(const std::string& dataset_table, const std::string& extra = "") {
  std::ostringstream c;
  c << "[run]\nthreads = 2\n"
    << dataset_table << "[backbone]\nplugin = \"torchscript\"\nfile = \"" << models_dir()
    << "/mobilenet_v1_0.25_128_quant.ts.pt\"\nnative_input_size = 128\n[features]\ninput_size = "
       "64\n[variants]\nrandom_seeds = [0]\n"
    << "[splits]\nfolds = 2\n[transferability]\nnames = []\ncka = false\n[analysis]\nbootstrap = 0\n"
    << extra;
  return c.str();
}
inline std::string folder_table(const fs::path& root, const std::string& more = "") {
  return "[dataset]\nplugin = \"folder\"\nroot = \"" + root.string() + "\"\n" + more;
}
inline RunSummary run(const std::string& text, const fs::path& out, bool replace = false) {
  RunOptions o;
  o.out_dir = out.string();
  o.replace_other = replace;
  return kgain::core::run_study(kgain::core::parse_config(text, (out.parent_path() / "study.toml").string()), o);
}

}  // namespace kgain::test
