// Walking K same-shaped strided operands on the GPU. The shape is coalesced exactly as on the CPU
// (cpu::coalesce in ops/cpu/strided.h: size-1 dims dropped, dims merged where every operand is
// contiguous across them), then passed by value in a small fixed-size struct. One thread per
// element of the output's logical order, innermost dim fastest, so neighbouring threads touch
// neighbouring addresses of every dense operand. A fully coalesced walk (one dim) needs no
// division; others divide by each size, in 32-bit arithmetic when the element count allows.
#pragma once
#include "core/tensor.h"
#include "ops/cpu/strided.h"
#include "ops/cuda/cuda_context.h"

#include <array>
#include <cstdint>

namespace kindling::cuda {

constexpr int kMaxDims = 8;

template <int K>
struct StridedArgs {
  int ndim;
  int64_t sizes[kMaxDims];       // innermost last
  int64_t strides[K][kMaxDims];  // per operand, in elements
};

// One coalesced dim: operand k's element i sits at i * stride[k].
template <int K>
struct LinearArgs {
  int64_t stride[K];
};

// f(off) with off[k] the element offset of operand k, for every element i < n.
template <int K, typename F>
__global__ void linear_walk_kernel(int64_t n, LinearArgs<K> args, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    int64_t off[K];
#pragma unroll
    for (int k = 0; k < K; ++k) off[k] = i * args.stride[k];
    f(off);
  }
}

// The same over `ndim` coalesced dims: element i's index along dim d comes from dividing i by the
// sizes of the dims inside d; off[k] = sum_d index_d * strides[k][d].
template <int K, typename Index, typename F>
__global__ void strided_walk_kernel(Index n, StridedArgs<K> args, F f) {
  for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(blockDim.x) * gridDim.x) {
    int64_t off[K] = {};
    Index rest = i;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 0; --d) {
      if (d >= args.ndim) continue;
      const Index size = Index(args.sizes[d]);
      const Index index = rest % size;
      rest /= size;
#pragma unroll
      for (int k = 0; k < K; ++k) off[k] += int64_t(index) * args.strides[k][d];
    }
    f(off);
  }
}

// Runs f over every element of `shape`, operand k having strides *strides[k]. F is a struct with
// `__device__ void operator()(const int64_t (&off)[K]) const`.
template <int K, typename F>
void strided_walk(const char* op, const Shape& shape, const std::array<const Shape*, K>& strides, F f) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  constexpr int kBlock = 256;
  const cpu::StridedLayout<K> layout = cpu::coalesce<K>(shape, strides);
  const int ndim = int(layout.shape.size());
  if (ndim == 1) {
    LinearArgs<K> args;
    for (int k = 0; k < K; ++k) args.stride[k] = layout.strides[k][0];
    linear_walk_kernel<K><<<grid_for(n, kBlock), kBlock, 0, stream()>>>(n, args, f);
    KINDLING_CUDA_LAUNCH_CHECK("linear_walk_kernel");
    return;
  }
  KINDLING_CHECK(ndim <= kMaxDims, ShapeError,
                 "{} on CUDA: shape {} has {} dims that cannot be merged; at most {} are supported", op,
                 shape_str(shape), ndim, kMaxDims);
  StridedArgs<K> args{};
  args.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    args.sizes[d] = layout.shape[d];
    for (int k = 0; k < K; ++k) args.strides[k][d] = layout.strides[k][d];
  }
  if (n <= int64_t(INT32_MAX)) {  // i + grid stride then stays below 2^32
    strided_walk_kernel<K, uint32_t><<<grid_for(n, kBlock), kBlock, 0, stream()>>>(uint32_t(n), args, f);
  } else {
    strided_walk_kernel<K, int64_t><<<grid_for(n, kBlock), kBlock, 0, stream()>>>(n, args, f);
  }
  KINDLING_CUDA_LAUNCH_CHECK("strided_walk_kernel");
}

}  // namespace kindling::cuda
