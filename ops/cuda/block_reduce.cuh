// Deterministic reductions across a warp and across a one-dimensional block. Values combine along a
// fixed shuffle tree, then the warps' results combine in warp order in one thread, so the same
// inputs in the same threads always give the same bits: no atomics anywhere.
#pragma once
#include <cuda_runtime.h>

namespace kindling::cuda {

__device__ inline float shfl_down(float v, int offset) { return __shfl_down_sync(0xffffffffu, v, offset); }
__device__ inline double shfl_down(double v, int offset) { return __shfl_down_sync(0xffffffffu, v, offset); }
__device__ inline double2 shfl_down(double2 v, int offset) {
  return make_double2(shfl_down(v.x, offset), shfl_down(v.y, offset));
}

// Lane 0 receives combine() over the warp's 32 values. Every lane of the warp must call it.
template <typename T, typename Combine>
__device__ T warp_reduce(T value, Combine combine) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value = combine(value, shfl_down(value, offset));
  return value;
}

// Every thread receives combine() over the block's values. Requires blockDim.x a multiple of 32
// (at most 1024), blockDim.y == blockDim.z == 1, and every thread of the block calling it.
template <typename T, typename Combine>
__device__ T block_reduce(T value, Combine combine) {
  __shared__ T warp_totals[32];
  __shared__ T total;
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  value = warp_reduce(value, combine);
  __syncthreads();  // a previous call's readers of `total` are done
  if (lane == 0) warp_totals[warp] = value;
  __syncthreads();
  if (threadIdx.x == 0) {
    T sum = warp_totals[0];
    for (int w = 1; w < int(blockDim.x) / 32; ++w) sum = combine(sum, warp_totals[w]);
    total = sum;
  }
  __syncthreads();
  return total;
}

// Threads per block for one row of `n` items: a power of two in [32, max_threads].
inline int threads_for_row(int64_t n, int max_threads) {
  int threads = 32;
  while (threads < max_threads && threads < n) threads *= 2;
  return threads;
}

}  // namespace kindling::cuda
