// The CPU caching allocator. Requests are rounded up to a size class (64-byte multiples below 4 KiB,
// then four classes per power of two), so the blocks a training step frees are found again on the
// next step. Free blocks wait on a per-class list until empty_cache().
#include "core/allocator.h"

#include "core/error.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace kindling {
namespace {

size_t size_class(size_t bytes) {
  constexpr size_t kSmall = 4096;
  if (bytes <= kSmall) return (bytes + 63) / 64 * 64;
  // Four classes between consecutive powers of two: waste is at most 25 %.
  const size_t power = std::bit_floor(bytes);
  const size_t quarter = power / 4;
  return (bytes + quarter - 1) / quarter * quarter;
}

class CpuCachingAllocator final : public Allocator {
 public:
  ~CpuCachingAllocator() override { empty_cache(); }

  void* allocate(size_t bytes) override {
    const size_t cls = size_class(std::max<size_t>(bytes, 1));
    std::lock_guard lock(mutex_);
    ++stats_.num_allocs;
    stats_.allocated_bytes += cls;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    auto& list = free_lists_[cls];
    if (!list.empty()) {
      void* ptr = list.back();
      list.pop_back();
      return ptr;
    }
    void* ptr = std::aligned_alloc(64, cls);
    if (!ptr) {
      stats_.allocated_bytes -= cls;
      throw Error(fmt::format("out of CPU memory allocating {} bytes", cls));
    }
    ++stats_.num_system_allocs;
    stats_.reserved_bytes += cls;
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes) override {
    if (!ptr) return;
    const size_t cls = size_class(std::max<size_t>(bytes, 1));
    std::lock_guard lock(mutex_);
    stats_.allocated_bytes -= cls;
    free_lists_[cls].push_back(ptr);
  }

  AllocatorStats stats() const override {
    std::lock_guard lock(mutex_);
    return stats_;
  }

  void reset_peak() override {
    std::lock_guard lock(mutex_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }

  void empty_cache() override {
    std::lock_guard lock(mutex_);
    for (auto& [cls, list] : free_lists_) {
      for (void* ptr : list) std::free(ptr);
      stats_.reserved_bytes -= cls * list.size();
      list.clear();
    }
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_lists_;
  AllocatorStats stats_;
};

}  // namespace

Allocator& cpu_allocator() {
  // Never destroyed: tensors in static objects may outlive any destruction order we could pick.
  static auto* allocator = new CpuCachingAllocator();
  return *allocator;
}

}  // namespace kindling
