// Allocators own raw device memory. Storage asks its device's allocator for bytes and gives them
// back; the allocator may keep freed blocks for reuse, so a training step that allocates the same
// sizes every iteration stops calling the system allocator after the first step.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kindling {

struct AllocatorStats {
  size_t allocated_bytes = 0;       // held by live tensors now
  size_t reserved_bytes = 0;        // allocated + cached free blocks
  size_t peak_allocated_bytes = 0;  // high-water mark of allocated_bytes since the last reset
  uint64_t num_allocs = 0;          // requests served
  uint64_t num_system_allocs = 0;   // requests that reached the system allocator (cache misses)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Requires bytes > 0. Ensures a 64-byte-aligned block of at least `bytes` bytes.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Returns cached free blocks to the system.
  virtual void empty_cache() = 0;
};

// The CPU allocator: 64-byte aligned blocks in size classes, freed blocks kept on per-class free lists.
Allocator& cpu_allocator();

}  // namespace kindling
