#include "cluster/cluster.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#ifdef KGAIN_WITH_MPI
#include <mpi.h>
#endif

namespace kgain::core {
namespace {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

bool built_with_mpi() {
#ifdef KGAIN_WITH_MPI
  return true;
#else
  return false;
#endif
}

Cluster& Cluster::get() {
  static Cluster cluster;
  return cluster;
}

Cluster::Cluster() {
  if (!launched_by_mpi()) return;
#ifdef KGAIN_WITH_MPI
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  initialized_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
#else
  std::fprintf(stderr,
               "kgain: started by an MPI launcher, but this kgain was built without MPI (install libopenmpi-dev and "
               "rebuild); every rank would run the whole study, so this one stops\n");
  std::exit(1);
#endif
}

Cluster::~Cluster() {
#ifdef KGAIN_WITH_MPI
  if (initialized_) MPI_Finalize();
#endif
}

void Cluster::barrier() const {
#ifdef KGAIN_WITH_MPI
  if (initialized_) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

std::vector<std::string> Cluster::gather(const std::string& mine) const {
  if (!distributed()) return {mine};
#ifdef KGAIN_WITH_MPI
  // Sizes first (as 64-bit counts), then the bytes in pieces under MPI's int limit.
  unsigned long long size = mine.size();
  std::vector<unsigned long long> sizes(static_cast<std::size_t>(size_));
  MPI_Gather(&size, 1, MPI_UNSIGNED_LONG_LONG, sizes.data(), 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  constexpr unsigned long long piece = 1ULL << 30;
  std::vector<std::string> out;
  if (root()) {
    out.resize(static_cast<std::size_t>(size_));
    out[0] = mine;
    for (int r = 1; r < size_; ++r) {
      out[static_cast<std::size_t>(r)].resize(sizes[static_cast<std::size_t>(r)]);
      for (unsigned long long at = 0; at < sizes[static_cast<std::size_t>(r)]; at += piece)
        MPI_Recv(out[static_cast<std::size_t>(r)].data() + at,
                 static_cast<int>(std::min(piece, sizes[static_cast<std::size_t>(r)] - at)), MPI_BYTE, r, 7,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
  } else {
    for (unsigned long long at = 0; at < size; at += piece)
      MPI_Send(mine.data() + at, static_cast<int>(std::min(piece, size - at)), MPI_BYTE, 0, 7, MPI_COMM_WORLD);
  }
  return out;
#else
  return {mine};
#endif
}

void Cluster::broadcast(std::string& bytes) const {
  if (!distributed()) return;
#ifdef KGAIN_WITH_MPI
  unsigned long long size = bytes.size();
  MPI_Bcast(&size, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  bytes.resize(size);
  constexpr unsigned long long piece = 1ULL << 30;
  for (unsigned long long at = 0; at < size; at += piece)
    MPI_Bcast(bytes.data() + at, static_cast<int>(std::min(piece, size - at)), MPI_BYTE, 0, MPI_COMM_WORLD);
#endif
}

void Cluster::agree_on_error(const std::string& error) const {
  if (!distributed()) {
    if (!error.empty()) throw std::runtime_error(error);
    return;
  }
  // Root learns every rank's outcome and tells every rank the first failure.
  const auto all = gather(error);
  std::string first;
  for (std::size_t r = 0; r < all.size() && first.empty(); ++r)
    if (!all[r].empty()) first = (r == 0 ? "" : "rank " + std::to_string(r) + ": ") + all[r];
  broadcast(first);
  if (!first.empty()) throw std::runtime_error(first);
}

void Cluster::abort(const std::string& why) const {
  std::fprintf(stderr, "kgain%s: %s\n", distributed() ? (" rank " + std::to_string(rank_)).c_str() : "", why.c_str());
#ifdef KGAIN_WITH_MPI
  if (initialized_) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  std::exit(1);
}

}  // namespace kgain::core
