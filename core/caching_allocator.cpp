#include "core/caching_allocator.h"

#include <algorithm>
#include <bit>

namespace kindling {

size_t CachingAllocator::size_class(size_t bytes) const {
  bytes = std::max<size_t>(bytes, 1);
  if (bytes <= small_limit_) return (bytes + small_granule_ - 1) / small_granule_ * small_granule_;
  const size_t quarter = std::bit_floor(bytes) / 4;
  return (bytes + quarter - 1) / quarter * quarter;
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t cls = size_class(bytes);
  std::lock_guard lock(mutex_);
  auto& list = free_lists_[cls];
  void* ptr = nullptr;
  if (!list.empty()) {
    ptr = list.back();
    list.pop_back();
  } else {
    ptr = system_allocate(cls);
    ++stats_.num_system_allocs;
    stats_.reserved_bytes += cls;
  }
  ++stats_.num_allocs;
  stats_.allocated_bytes += cls;
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  return ptr;
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  const size_t cls = size_class(bytes);
  std::lock_guard lock(mutex_);
  stats_.allocated_bytes -= cls;
  free_lists_[cls].push_back(ptr);
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
}

void CachingAllocator::empty_cache() {
  std::lock_guard lock(mutex_);
  release_cached_blocks();
}

void CachingAllocator::release_cached_blocks() {
  for (auto& [cls, list] : free_lists_) {
    for (void* ptr : list) system_free(ptr);
    stats_.reserved_bytes -= cls * list.size();
    list.clear();
  }
}

}  // namespace kindling
