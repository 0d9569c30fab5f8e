// A study split over the ranks of an MPI job (mpirun -np N kgain run): the same bytes as one
// process, and a rank killed mid-extraction loses only its chunk in flight. Skipped, with a
// message, where Open MPI's mpirun or an MPI build is missing.
#include "test_support.hpp"
#include "test_files.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cluster/cluster.hpp"

namespace fs = std::filesystem;
using kgain::test::slurp;

namespace {

fs::path work() {
  static const fs::path dir = kgain::test::fresh_temp_dir("cluster");
  return dir;
}

bool mpi_available() {
  if (!kgain::core::built_with_mpi() || !fs::exists("/usr/bin/mpirun")) {
    WARN(
        "Open MPI is not installed (apt-get install libopenmpi-dev openmpi-bin) or kgain was built without it: MPI "
        "tests skipped");
    return false;
  }
  return true;
}

// 400 PCam patches, MobileNetV1 0.25 at 64 px, 2 seeds, the default estimators: 2 chunks of
// images, 14 taps, every kind of result file.
std::string config() {
  const fs::path path = work() / "study.toml";
  if (!fs::exists(path))
    std::ofstream(path)
        << "[run]\nthreads = 1\n[dataset]\nplugin = \"manifest\"\nroot = \"" << kgain::test::data_dir()
        << "/pcam-mini\"\nlimit_per_class = 100\n[backbone]\nplugin = \"torchscript\"\nfile = \""
        << kgain::test::models_dir()
        << "/mobilenet_v1_0.25_128_quant.ts.pt\"\nnative_input_size = 128\n[features]\ninput_size = 64\n"
        << "[variants]\nrandom_seeds = [0, 1]\n[analysis]\nbootstrap = 200\n";
  return path.string();
}

// `ranks` 0: a plain process; else mpirun with what root (CI) and a 2-core machine need.
int run(int ranks, const std::string& out, const std::string& env = "") {
  std::string command;
  if (ranks > 0)
    command = std::string("mpirun ") + (::getuid() == 0 ? "--allow-run-as-root " : "") +
              "--oversubscribe --mca btl_vader_single_copy_mechanism none -np " + std::to_string(ranks) +
              (env.empty() ? "" : " -x " + env) + " ";
  command += kgain::test::kgain_binary() + " run " + config() + " --out " + (work() / out).string() + " --quiet > " +
             (work() / (out + ".log")).string() + " 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const std::string& single() {
  static const std::string dir = [] {
    REQUIRE(run(0, "single") == 0);
    return (work() / "single").string();
  }();
  return dir;
}

void check_same_outputs(const std::string& dir) {
  for (const char* file : {"results.csv", "gain.csv", "gain.json", "transferability.csv", "splits.csv", "taps.csv"}) {
    CAPTURE(dir, file);
    const std::string expected = slurp(single() + "/" + file);
    REQUIRE(!expected.empty());
    CHECK(slurp(dir + "/" + file) == expected);
  }
}

}  // namespace

TEST_CASE("mpirun with 2 and 3 ranks writes the same bytes as one process", "[mpi][end_to_end]") {
  if (!mpi_available()) return;
  for (int ranks : {2, 3}) {
    const std::string out = "ranks-" + std::to_string(ranks);
    REQUIRE(run(ranks, out) == 0);
    check_same_outputs((work() / out).string());
    // Each rank logs with its rank; the others' logs sit beside root's.
    CHECK(slurp((work() / out / "kgain.log").string()).find("[rank 0]") != std::string::npos);
    CHECK(fs::exists(work() / out / ("kgain.rank-" + std::to_string(ranks - 1) + ".log")));
  }
}

TEST_CASE("A rank killed during extraction fails the job naming it, and the rerun resumes and agrees",
          "[mpi][end_to_end]") {
  if (!mpi_available()) return;
  // Rank 1 dies (SIGKILL, as a lost node) right after storing its first segment.
  CHECK(run(2, "killed", "KGAIN_TEST_KILL_RANK=1:1") != 0);
  const std::string log = slurp((work() / "killed.log").string());
  CHECK(log.find("rank 1") != std::string::npos);
  std::size_t stored = 0;
  for (const auto& e : fs::recursive_directory_iterator(work() / "killed" / "cache"))
    stored += e.path().extension() == ".kgseg";
  REQUIRE(stored >= 1);
  REQUIRE(run(2, "killed") == 0);
  const std::string log_text = slurp((work() / "killed" / "kgain.log").string());
  const std::string resumed = log_text.substr(log_text.rfind("features ready"));
  CAPTURE(resumed.substr(0, resumed.find('\n')));
  CHECK(resumed.find("from the feature store") != std::string::npos);
  CHECK(resumed.find(" 0 from the feature store") == std::string::npos);  // the finished segments were reused
  check_same_outputs((work() / "killed").string());
}
