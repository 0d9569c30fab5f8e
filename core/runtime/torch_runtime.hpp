// run_graphs_without_profiling: TorchScript graphs run by the simple (legacy) executor.
//
// LibTorch's default, the profiling executor, first runs a graph with profiling nodes that
// record tensor shapes, then specializes it, keeping guarded fallbacks: machinery for training
// and for the GPU fusers, of no use to kgain's CPU inference graphs. Measured on a ViT-B/16 at
// 224 px, batch 32 (docs/performance.md, "Transformers"): the peak memory of extraction grows
// with the depth of the network under it (3.0 GB against 1.3 GB when only the first block runs)
// while eager PyTorch needs under 1 GB. Call it once at the start of a program; it changes how
// every TorchScript module in the process runs, not what it computes.
#pragma once

namespace kgain::core {

void run_graphs_without_profiling();

}  // namespace kgain::core
