// The CPU allocator: 64-byte aligned blocks (AVX-512 loads never split a cache line) from
// aligned_alloc, cached by core/caching_allocator.h. Small blocks round to 64 bytes up to 4 KiB.
#include "core/allocator.h"

#include "core/caching_allocator.h"
#include "core/error.h"

#include <cstdlib>

namespace kindling {
namespace {

class CpuCachingAllocator final : public CachingAllocator {
 public:
  CpuCachingAllocator() : CachingAllocator(4096, 64) {}

 protected:
  void* system_allocate(size_t bytes) override {
    void* ptr = std::aligned_alloc(64, bytes);
    if (!ptr) {
      release_cached_blocks();
      ptr = std::aligned_alloc(64, bytes);
    }
    if (!ptr)
      throw Error(fmt::format("out of CPU memory allocating {} bytes ({} bytes held by tensors)", bytes,
                              locked_stats().allocated_bytes));
    return ptr;
  }
  void system_free(void* ptr) override { std::free(ptr); }
};

}  // namespace

Allocator& cpu_allocator() {
  // Never destroyed: tensors in static objects may outlive any destruction order we could pick.
  static auto* allocator = new CpuCachingAllocator();
  return *allocator;
}

}  // namespace kindling
