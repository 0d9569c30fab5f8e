// keep_freed_memory_for_reuse: makes glibc's malloc keep large blocks for reuse.
//
// LibTorch's CPU allocator does not cache, and glibc serves every block above its mmap
// threshold (at most 32 MB) with fresh mmap pages, which the kernel zeroes on first touch and
// takes back on free. A CNN's activations at 224 px are such blocks, so every forward pass paid
// for them again: about as much CPU time in the kernel as in the network (docs/performance.md).
// Serving them from the heap and never trimming it lets freed activations be reused. Call it once
// at the start of a program, before any thread starts. Peak memory stays that of the largest
// working set; the heap is not returned to the system until the process ends.
#pragma once

namespace kgain::core {

void keep_freed_memory_for_reuse();

}  // namespace kgain::core
