// Cluster: the processes of one study. Under an MPI launcher (mpirun, srun) each process is a
// rank of the job; otherwise the study is one process, as if the job had a single rank.
//
// kgain uses MPI only where it must: root (rank 0) claims the run directory, every rank then
// extracts its share of the missing images into the shared feature store and fits its share of
// the taps, and root gathers the predictions, scores them and writes every result file. All
// exchanges go through the few calls below, which carry bytes.
// Threads: call from the main thread only (MPI is initialized with MPI_THREAD_FUNNELED).
#pragma once

#include <string>
#include <vector>

namespace kgain::core {

class Cluster {
 public:
  // The job this process belongs to; MPI is initialized on first use when a launcher started
  // the process ($OMPI_COMM_WORLD_SIZE, $PMIX_RANK, $PMI_RANK) and kgain was built with MPI.
  static Cluster& get();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }

  void barrier() const;
  // Root receives every rank's bytes in rank order; other ranks receive nothing.
  std::vector<std::string> gather(const std::string& mine) const;
  // Every rank receives root's `bytes`.
  void broadcast(std::string& bytes) const;
  // Every rank runs `step`; if it throws on any rank, it throws on every rank, with the first
  // failing rank's message (so that no rank waits forever for one that gave up).
  template <class Step>
  void together(Step&& step) const {
    std::string error;
    try {
      step();
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
    agree_on_error(error);
  }
  // Ends the whole job with `why` (MPI_Abort); in a single process, exits with status 1.
  [[noreturn]] void abort(const std::string& why) const;

  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

 private:
  Cluster();
  void agree_on_error(const std::string& error) const;
  int rank_ = 0, size_ = 1;
  bool initialized_ = false;
};

// True when this build can run under MPI (kgain was built with libopenmpi-dev present).
bool built_with_mpi();

}  // namespace kgain::core
