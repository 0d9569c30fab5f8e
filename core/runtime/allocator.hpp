// keep_freed_memory_for_reuse: makes glibc's malloc keep large blocks for reuse;
// return_free_memory: gives the pages of free blocks back between stages.
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

// Hands the pages of every free block in the heap back to the system (glibc's malloc_trim),
// without moving anything. Between stages whose blocks differ in size (the extraction's
// activations, then one tap's features and a probe's copies, then the next tap's larger ones)
// the heap keeps holes that the next sizes do not fit; their pages would stay resident and the
// peak would grow with every tap. Cheap (a walk over the free lists); call it between stages.
void return_free_memory();

}  // namespace kgain::core
