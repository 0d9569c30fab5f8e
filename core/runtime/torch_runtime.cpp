#include "runtime/torch_runtime.hpp"

#include <torch/csrc/jit/runtime/graph_executor.h>

namespace kgain::core {

void run_graphs_without_profiling() { torch::jit::getProfilingMode() = false; }

}  // namespace kgain::core
