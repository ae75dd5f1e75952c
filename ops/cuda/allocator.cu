// The caching device allocator and the pinned staging buffers for host transfers (see
// ops/cuda/cuda_allocator.h for the contract).
#include "core/caching_allocator.h"
#include "core/error.h"
#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_context.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace kindling::cuda {
namespace {

// Device blocks: small ones round to 512 bytes up to 1 MiB (cuDNN workspaces and BN statistics
// come in many small sizes), then core/caching_allocator.h's classes.
class CudaCachingAllocator final : public CachingAllocator {
 public:
  CudaCachingAllocator() : CachingAllocator(size_t(1) << 20, 512) {}

 protected:
  void* system_allocate(size_t cls) override {
    void* ptr = nullptr;
    cudaError_t status = cudaMalloc(&ptr, cls);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the error, give the cache back, try once more
      release_cached_blocks();
      status = cudaMalloc(&ptr, cls);
    }
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      (void)cudaMemGetInfo(&free_bytes, &total_bytes);
      throw DeviceError(fmt::format(
          "out of GPU memory: cudaMalloc of {} bytes failed with {} bytes held by tensors, {} reserved "
          "by kindling, {} of {} bytes free on the device",
          cls, locked_stats().allocated_bytes, locked_stats().reserved_bytes, free_bytes, total_bytes));
    }
    check(status, "cudaMalloc(&ptr, cls)", __FILE__, __LINE__);
    return ptr;
  }

  // cudaFree waits for the device, so no kernel still reads a freed block.
  void system_free(void* ptr) override { KINDLING_CUDA_CHECK(cudaFree(ptr)); }
};

// Two pinned buffers used in turn: while the DMA engine copies one chunk, the host fills or drains
// the other. An event per buffer says when its last copy finished.
class PinnedStaging {
 public:
  static constexpr size_t kChunk = size_t(4) << 20;

  void upload(char* device_dst, const char* host_src, size_t bytes) {
    std::lock_guard lock(mutex_);
    ensure_buffers();
    for (size_t done = 0; done < bytes; done += kChunk) {
      const size_t n = std::min(kChunk, bytes - done);
      Buffer& buffer = buffers_[next_];
      next_ ^= 1;
      KINDLING_CUDA_CHECK(cudaEventSynchronize(buffer.copied));  // its previous copy has left it
      std::memcpy(buffer.host, host_src + done, n);
      KINDLING_CUDA_CHECK(
          cudaMemcpyAsync(device_dst + done, buffer.host, n, cudaMemcpyHostToDevice, stream()));
      KINDLING_CUDA_CHECK(cudaEventRecord(buffer.copied, stream()));
    }
  }

  void download(char* host_dst, const char* device_src, size_t bytes) {
    std::lock_guard lock(mutex_);
    ensure_buffers();
    // Queue chunk i + 1 before draining chunk i, so the copy and the host memcpy overlap.
    const size_t chunks = (bytes + kChunk - 1) / kChunk;
    auto queue = [&](size_t chunk) {
      Buffer& buffer = buffers_[chunk % 2];
      const size_t n = std::min(kChunk, bytes - chunk * kChunk);
      KINDLING_CUDA_CHECK(
          cudaMemcpyAsync(buffer.host, device_src + chunk * kChunk, n, cudaMemcpyDeviceToHost, stream()));
      KINDLING_CUDA_CHECK(cudaEventRecord(buffer.copied, stream()));
    };
    queue(0);
    for (size_t chunk = 0; chunk < chunks; ++chunk) {
      if (chunk + 1 < chunks) queue(chunk + 1);
      Buffer& buffer = buffers_[chunk % 2];
      KINDLING_CUDA_CHECK(cudaEventSynchronize(buffer.copied));
      std::memcpy(host_dst + chunk * kChunk, buffer.host, std::min(kChunk, bytes - chunk * kChunk));
    }
  }

 private:
  struct Buffer {
    void* host = nullptr;
    cudaEvent_t copied = nullptr;
  };

  // Requires mutex_ held.
  void ensure_buffers() {
    if (buffers_[0].host) return;
    for (Buffer& buffer : buffers_) {
      KINDLING_CUDA_CHECK(cudaHostAlloc(&buffer.host, kChunk, cudaHostAllocDefault));
      KINDLING_CUDA_CHECK(cudaEventCreateWithFlags(&buffer.copied, cudaEventDisableTiming));
    }
  }

  std::mutex mutex_;
  Buffer buffers_[2];
  int next_ = 0;
};

PinnedStaging& staging() {
  static auto* instance = new PinnedStaging();  // never destroyed, like the allocators
  return *instance;
}

}  // namespace

Allocator& device_allocator() {
  // Never destroyed: tensors in static objects may outlive any destruction order we could pick.
  static auto* allocator = new CudaCachingAllocator();
  return *allocator;
}

void upload(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return;
  staging().upload(static_cast<char*>(device_dst), static_cast<const char*>(host_src), bytes);
}

void download(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return;
  staging().download(static_cast<char*>(host_dst), static_cast<const char*>(device_src), bytes);
}

}  // namespace kindling::cuda
