// The caching allocator both devices use: requests are rounded up to a size class (fine granules
// for small blocks, then four classes per power of two, so waste stays under 25 %), and freed
// blocks wait on a per-class free list for the next request of that class. A training step that
// allocates the same sizes every iteration stops reaching the system allocator after its first
// step. A device supplies only how to get and return memory from the system.
#pragma once
#include "core/allocator.h"

#include <mutex>
#include <unordered_map>
#include <vector>

namespace kindling {

class CachingAllocator : public Allocator {
 public:
  // Blocks up to small_limit bytes round up to a multiple of small_granule (a multiple of 64).
  CachingAllocator(size_t small_limit, size_t small_granule)
      : small_limit_(small_limit), small_granule_(small_granule) {}

  void* allocate(size_t bytes) final;
  void deallocate(void* ptr, size_t bytes) final;  // never throws: called from Storage's destructor
  AllocatorStats stats() const final;
  void reset_peak() final;
  void empty_cache() final;

  size_t size_class(size_t bytes) const;

 protected:
  // Called with the lock held. Returns a block of `bytes` or throws an Error that says why;
  // may call release_cached_blocks() and try again when the system is out of memory.
  virtual void* system_allocate(size_t bytes) = 0;
  virtual void system_free(void* ptr) = 0;
  // Requires the lock held (from inside system_allocate).
  void release_cached_blocks();
  const AllocatorStats& locked_stats() const { return stats_; }

 private:
  const size_t small_limit_, small_granule_;
  mutable std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_lists_;
  AllocatorStats stats_;
};

}  // namespace kindling
