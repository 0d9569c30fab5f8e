// The run directory: chosen, locked, checked against the config, logged into, and claimed once
// the plugins have accepted the config (docs/user-guide.md, "Run directories").
//
// The lock (flock on .kgain.lock) keeps two runs from interleaving their files; the check
// refuses a folder that holds another config's run (unless --replace) or something that is not a
// run; the log copies every message into kgain.log for as long as the run lasts. In an MPI job,
// root locks and checks, and every rank proves it sees the folder.
// Threads: called from the run's main thread.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"

namespace kgain::core {

struct StudyPlan;

struct RunOptions {
  std::string out_dir;         // empty: runs/<config name> under the current directory
  bool replace_other = false;  // allow a run directory that holds another config's run
};

// runs/<config name>, or --out.
std::string run_dir_of(const Config& config, const RunOptions& options);

class RunDirLock;
class RunLog;

// The run directory, locked for this run (root only) and checked against the config, with its
// log open: both last as long as this object.
class OpenRunDir {
 public:
  OpenRunDir(const Config& config, const RunOptions& options, const std::string& dir);
  ~OpenRunDir();
  OpenRunDir(const OpenRunDir&) = delete;
  OpenRunDir& operator=(const OpenRunDir&) = delete;

 private:
  std::unique_ptr<RunDirLock> lock_;
  std::unique_ptr<RunLog> log_;
};

// Everything was accepted: the directory is now this run's (a config that fails before this
// point leaves nothing behind, so the corrected config is not refused). Writes
// config.resolved.toml, splits.csv and taps.csv, creates the feature store `store` and checks
// that every rank sees it.
void claim_run_dir(const Config& config, const StudyPlan& plan, const std::string& dir, const std::string& store);

}  // namespace kgain::core
