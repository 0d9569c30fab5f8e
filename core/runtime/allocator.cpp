#include "runtime/allocator.hpp"

#include <climits>

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__)
#include <c10/core/CPUAllocator.h>
#include <sanitizer/asan_interface.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>
#endif

namespace kgain::core {

void keep_freed_memory_for_reuse() {
  mallopt(M_MMAP_MAX, 0);              // large blocks from the heap, not from fresh mmap pages
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // hand the top of the heap back only past 2 GB free
  mallopt(M_TOP_PAD, 64 << 20);        // grow the heap 64 MB at a time: fewer brk calls
}

void return_free_memory() { malloc_trim(0); }

#if defined(__SANITIZE_ADDRESS__)
namespace {

// Under AddressSanitizer (tools/sanitize.sh) mallopt does nothing: ASan's allocator maps every
// block over 128 KB afresh and unmaps it when it leaves quarantine, so every tensor of a forward
// pass cost page faults again (the sanitized PCam sweep spent 34% of its time in the kernel;
// docs/ci.md).
// This allocator, installed for LibTorch's CPU tensors in sanitized builds only, keeps freed
// storage for a later tensor of exactly the same size, poisoned while it waits: a read or write
// of a freed tensor is still reported (use-after-poison), and ASan's redzones still follow each
// block's end, as the size never changes.
class ReusingTensorAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const override {
    void* data = take(bytes);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

 private:
  static constexpr size_t kAlignment = 64;          // LibTorch's own (c10::gAlignment)
  static constexpr size_t kMaxIdleBytes = 1 << 30;  // beyond this, freed blocks go back to ASan

  struct Pool {
    std::mutex mutex;
    std::unordered_map<size_t, std::vector<void*>> idle;  // by size
    std::unordered_map<void*, size_t> size_of;            // every block handed out
    size_t idle_bytes = 0;
  };
  static Pool& pool() {
    static auto* p = new Pool;  // never destroyed: tensors may be freed during exit
    return *p;
  }

  static void* take(size_t bytes) {
    if (bytes == 0) return nullptr;
    Pool& p = pool();
    {
      std::lock_guard lock(p.mutex);
      auto idle = p.idle.find(bytes);
      if (idle != p.idle.end() && !idle->second.empty()) {
        void* data = idle->second.back();
        idle->second.pop_back();
        p.idle_bytes -= bytes;
        ASAN_UNPOISON_MEMORY_REGION(data, bytes);
        return data;
      }
    }
    void* data = nullptr;
    if (posix_memalign(&data, kAlignment, bytes) != 0) throw std::bad_alloc();
    std::lock_guard lock(p.mutex);
    p.size_of[data] = bytes;
    return data;
  }

  static void release(void* data) {
    if (data == nullptr) return;
    Pool& p = pool();
    std::unique_lock lock(p.mutex);
    const size_t bytes = p.size_of.at(data);
    if (p.idle_bytes + bytes > kMaxIdleBytes) {
      p.size_of.erase(data);
      lock.unlock();
      std::free(data);
      return;
    }
    ASAN_POISON_MEMORY_REGION(data, bytes);
    p.idle[bytes].push_back(data);
    p.idle_bytes += bytes;
  }
};

// Installed when the library loads, before any tensor of kgain's: the programs and the tests.
const bool installed = [] {
  static ReusingTensorAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
  return true;
}();

}  // namespace
#endif

}  // namespace kgain::core
