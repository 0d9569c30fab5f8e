#include "runtime/blas_threads.hpp"

#include <dlfcn.h>

namespace kgain::core {
namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

// OpenBLAS's entry points, looked up in the process (LibTorch loaded it), so that kgain works
// unchanged with another BLAS.
SetThreads set_threads() { return reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); }
GetThreads get_threads() { return reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads")); }

}  // namespace

SingleThreadedBlas::SingleThreadedBlas() {
  if (const auto get = get_threads()) previous_ = get();
  if (const auto set = set_threads()) set(1);
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (const auto set = set_threads(); set && previous_ > 0) set(previous_);
}

}  // namespace kgain::core
