// BLAS threads. OpenBLAS (Debian's libopenblas0-pthread, under LibTorch's matrix products and
// LAPACK calls) keeps its own thread pool, sized to the CPUs the process may use and deaf to
// LibTorch's thread count. Two consequences kgain cannot accept: the same study gives results
// that differ in the last digits between a plain run and an MPI rank bound to fewer cores (an
// eigendecomposition sums in another order), and fits already run side by side, one per core,
// would each start more BLAS threads on top. So the probes and the estimators run with one BLAS
// thread each, in parallel over fits and estimators instead: the same numbers in every setting.
// Threads: the BLAS thread count is process-wide; create one of these only on the main thread,
// around work that starts its own workers.
#pragma once

namespace kgain::core {

class SingleThreadedBlas {
 public:
  SingleThreadedBlas();   // BLAS with one thread (a no-op when the BLAS is not OpenBLAS)
  ~SingleThreadedBlas();  // the previous count back
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace kgain::core
