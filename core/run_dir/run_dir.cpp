#include "run_dir/run_dir.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "cluster/cluster.hpp"
#include "extract/durable_file.hpp"
#include "plan/study_plan.hpp"
#include "runtime/build_info.hpp"
#include "runtime/machine.hpp"
#include "runtime/progress.hpp"
#include "runtime/text_file.hpp"
#include "write/results.hpp"

namespace fs = std::filesystem;

namespace kgain::core {

// Sends the log to the run directory too, for as long as the run lasts.
class RunLog {
 public:
  explicit RunLog(const std::string& file) : previous_(spdlog::default_logger()) {
    auto sinks = previous_->sinks();
    auto file_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
    file_sink->set_level(spdlog::level::debug);
    sinks.push_back(file_sink);
    auto logger = std::make_shared<spdlog::logger>("kgain", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::debug);
    logger->flush_on(spdlog::level::info);  // the log of a crashed run must hold its last steps
    for (auto& s : previous_->sinks()) s->set_level(previous_->level());
    spdlog::set_default_logger(logger);
  }
  ~RunLog() { spdlog::set_default_logger(previous_); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

// An exclusive lock on a run directory for as long as a run writes into it, so that two runs
// never interleave their files (flock: released by the kernel when the process dies).
class RunDirLock {
 public:
  explicit RunDirLock(const std::string& dir) {
    const std::string path = dir + "/.kgain.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot create the lock file " + path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const std::string holder = read_text_file(path).value_or("");
      ::close(fd_);
      throw std::runtime_error("another kgain run (" + (holder.empty() ? std::string("unknown process") : holder) +
                               ") is writing into '" + dir +
                               "'; wait for it to finish, or choose another directory with --out");
    }
    // Who holds it, for the message above; the lock holds even if this note cannot be written.
    const std::string me = "pid " + std::to_string(::getpid()) + " on " + host_name();
    if (::ftruncate(fd_, 0) == 0) (void)!::write(fd_, me.data(), me.size());
  }
  ~RunDirLock() { ::close(fd_); }
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

namespace {

// Checks that `dir` may take this run (a new or empty folder, or a run of the same
// measurement, or --replace); the caller holds the directory's lock. Nothing is written: the
// directory is claimed (config.resolved.toml) only once the plugins have accepted the config.
void check_run_dir(const std::string& dir, const Config& config, const RunOptions& options) {
  const std::string resolved = dir + "/config.resolved.toml";
  if (fs::exists(resolved)) {
    const std::string previous = read_text_file(resolved).value_or("");
    if (previous == config.resolved_toml) {
      spdlog::info("'{}' holds a run of this config: finished features are reused, results are replaced", dir);
    } else if (same_measurement(previous, config.resolved_toml)) {
      spdlog::info(
          "'{}' holds a run of the same dataset, backbone, features and variants: features are reused, results are "
          "replaced",
          dir);
    } else if (!options.replace_other) {
      throw std::runtime_error("the run directory '" + dir +
                               "' holds a run of a different config (another dataset, backbone, features or "
                               "variants; see " +
                               resolved +
                               "); choose another directory with --out, or pass --replace to replace that run");
    }
    return;
  }
  if (options.replace_other) return;
  // The lock and the log are written before the run claims the directory (a failed run leaves them).
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename() != ".kgain.lock" && entry.path().filename() != "kgain.log")
      throw std::runtime_error("the run directory '" + dir +
                               "' exists and is not a kgain run; choose another with --out");
}

// In an MPI job: every rank must see the folder root wrote into (a shared filesystem); throws
// naming the rank that does not. Does nothing in a single process.
void check_visible(const std::string& dir, const std::string& what) {
  const Cluster& cluster = Cluster::get();
  if (!cluster.distributed()) return;
  std::string token;
  cluster.together([&] {
    if (!cluster.root()) return;
    token = host_name() + " " + std::to_string(::getpid()) + " " +
            std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    write_file_atomically(dir + "/.kgain-visible", token);
  });
  cluster.broadcast(token);
  cluster.together([&] {
    if (read_text_file(dir + "/.kgain-visible").value_or("") != token)
      throw std::runtime_error(
          "rank " + std::to_string(cluster.rank()) + " does not see the " + what + " '" + dir +
          "' that rank 0 wrote to: the run "
          "directory and the feature store must be on a filesystem every rank sees (NFS, Lustre, GPFS; not a node's "
          "local disk), see docs/cluster.md");
  });
}

}  // namespace

std::string run_dir_of(const Config& config, const RunOptions& options) {
  return options.out_dir.empty() ? "runs/" + config.name : options.out_dir;
}

OpenRunDir::OpenRunDir(const Config& config, const RunOptions& options, const std::string& dir) {
  const Cluster& cluster = Cluster::get();
  cluster.together([&] {
    if (!cluster.root()) return;
    fs::create_directories(dir);
    lock_ = std::make_unique<RunDirLock>(dir);
    check_run_dir(dir, config, options);
  });
  check_visible(dir, "run directory");
  log_ = std::make_unique<RunLog>(
      dir + (cluster.root() ? "/kgain.log" : "/kgain.rank-" + std::to_string(cluster.rank()) + ".log"));
  if (cluster.distributed()) {
    spdlog::default_logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(cluster.rank()) +
                                          "] [%l] %v");
    if (!cluster.root()) Progress::enable(false);  // one progress line, root's
  }
  if (cluster.root())
    if (const int stale = remove_stale_temporaries(dir); stale > 0)
      spdlog::info("removed {} temporary file(s) that an interrupted run left behind", stale);
  spdlog::info("kgain {} run '{}' from {} into {}", KGAIN_VERSION, config.name, config.file, dir);
  if (cluster.distributed()) spdlog::info("MPI job of {} ranks: this is rank {}", cluster.size(), cluster.rank());
}

OpenRunDir::~OpenRunDir() = default;

void claim_run_dir(const Config& config, const StudyPlan& plan, const std::string& dir, const std::string& store) {
  const Cluster& cluster = Cluster::get();
  cluster.together([&] {
    if (!cluster.root()) return;
    write_file_atomically(dir + "/config.resolved.toml", config.resolved_toml);
    write_splits_csv(dir + "/splits.csv", plan.samples, plan.classes, plan.splits);
    write_taps_csv(dir + "/taps.csv", plan.taps);
    fs::create_directories(store);
  });
  check_visible(store, "feature store");
}

}  // namespace kgain::core
