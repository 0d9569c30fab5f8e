#include "kgain/core/allocator.hpp"

#include <climits>

#include <malloc.h>

namespace kgain::core {

void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_MAX, 0);              // large blocks from the heap, not from fresh mmap pages
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // hand the top of the heap back only past 2 GB free
  mallopt(M_TOP_PAD, 64 << 20);        // grow the heap 64 MB at a time: fewer brk calls
}

void return_free_memory() { malloc_trim(0); }

}  // namespace kgain::core
