// GPU memory: the caching device allocator behind every CUDA Storage, and the pinned host buffers
// that carry host <-> device copies. Plain C++ (no CUDA headers) so tests and tools can name them.
#pragma once
#include "core/allocator.h"

#include <cstddef>

namespace kindling::cuda {

// The caching allocator for cuda:0. Requests are rounded up to a size class (512-byte steps below
// 1 MiB, then four classes per power of two) and freed blocks wait on per-class free lists, so a
// training step that allocates the same sizes every iteration calls cudaMalloc only on its first
// step. All kernels run on one stream, so a block freed by the host may be handed to the next
// kernel at once: the stream orders the old user's reads before the new user's writes. When
// cudaMalloc fails, the cache is emptied and the call retried before DeviceError is thrown.
Allocator& device_allocator();

// Scratch memory from device_allocator() for one call (workspaces, partial sums): given back when
// the buffer goes out of scope, which is safe while kernels using it are still queued, because the
// next user of the block runs after them on the same stream.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes)
      : bytes_(bytes), ptr_(bytes > 0 ? device_allocator().allocate(bytes) : nullptr) {}
  ~DeviceBuffer() { device_allocator().deallocate(ptr_, bytes_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t size() const { return bytes_; }

 private:
  size_t bytes_;
  void* ptr_;
};

// Host -> device: staged through pinned buffers in chunks, double-buffered; returns once the last
// chunk is queued, so `host_src` may be reused at once while the copy finishes on the stream.
void upload(void* device_dst, const void* host_src, size_t bytes);
// Device -> host: waits for the stream's earlier work and for the copy; `host_dst` is complete on return.
void download(void* host_dst, const void* device_src, size_t bytes);

}  // namespace kindling::cuda
