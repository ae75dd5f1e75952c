// Per-channel sums over [N, C, L] tensors (batch norm statistics and gradients, convolution bias
// gradients), deterministic and without atomics. Stage 1: block (c, s) sums a fixed slice of
// channel c's N*L items into partial[c*S + s]; stage 2: one thread per channel adds its S partials
// in order and hands the totals to a finisher. Two sums at once (double2), accumulated in double.
#pragma once
#include "core/error.h"
#include "ops/cuda/block_reduce.cuh"
#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_context.h"

#include <algorithm>
#include <cstdint>

namespace kindling::cuda {

struct ChannelGeometry {
  int64_t N, C, L;  // element (n, c, l) sits at (n*C + c)*L + l
};

// Stage 1. term(index, c) -> double2 is summed over the channel's items in block (c, s)'s slice.
template <typename Term>
__global__ void channel_partial_sums_kernel(ChannelGeometry g, int slices, Term term, double2* partial) {
  const int64_t c = blockIdx.x;
  const int s = int(blockIdx.y);
  const uint32_t items = uint32_t(g.N * g.L);  // < 2^31, checked by the launcher
  const uint32_t L = uint32_t(g.L);
  const uint32_t per_slice = (items + uint32_t(slices) - 1) / uint32_t(slices);
  const uint32_t begin = uint32_t(s) * per_slice;
  const uint32_t end = min(items, begin + per_slice);
  double2 acc = make_double2(0.0, 0.0);
  for (uint32_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const uint32_t n = j / L, l = j - n * L;
    const double2 t = term((int64_t(n) * g.C + c) * g.L + l, c);
    acc.x += t.x;
    acc.y += t.y;
  }
  acc = block_reduce(acc, [](double2 a, double2 b) { return make_double2(a.x + b.x, a.y + b.y); });
  if (threadIdx.x == 0) partial[c * slices + s] = acc;
}

// Stage 2. finish(c, sums) for every channel.
template <typename Finish>
__global__ void channel_finish_kernel(int64_t C, int slices, const double2* partial, Finish finish) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += int64_t(blockDim.x) * gridDim.x) {
    double2 sum = make_double2(0.0, 0.0);
    for (int s = 0; s < slices; ++s) {
      sum.x += partial[c * slices + s].x;
      sum.y += partial[c * slices + s].y;
    }
    finish(c, sum);
  }
}

// Runs both stages. Term: `__device__ double2 operator()(int64_t index, int64_t c) const`;
// Finish: `__device__ void operator()(int64_t c, double2 sums) const`.
template <typename Term, typename Finish>
void channel_sums(const char* op, ChannelGeometry g, Term term, Finish finish) {
  if (g.C == 0) return;
  KINDLING_CHECK(g.N * g.L < (int64_t(1) << 31) && g.C <= int64_t(INT32_MAX), ShapeError,
                 "{} on CUDA: {} items per channel and {} channels exceed the kernel's 32-bit indexing", op,
                 g.N * g.L, g.C);
  constexpr int kBlock = 256;
  constexpr int64_t kItemsPerBlock = kBlock * 16;  // enough work per block to hide the final tree
  const int64_t items = g.N * g.L;
  // Enough blocks in all to fill the GPU, at most 64 slices per channel.
  const int64_t wanted = std::max<int64_t>(1, int64_t(num_sms()) * 4 / std::max<int64_t>(g.C, 1));
  const int slices =
      int(std::clamp<int64_t>(std::min(wanted, (items + kItemsPerBlock - 1) / kItemsPerBlock), 1, 64));
  DeviceBuffer partial(size_t(g.C) * size_t(slices) * sizeof(double2));
  channel_partial_sums_kernel<<<dim3(unsigned(g.C), unsigned(slices)), kBlock, 0, stream()>>>(
      g, slices, term, partial.as<double2>());
  KINDLING_CUDA_LAUNCH_CHECK("channel_partial_sums_kernel");
  channel_finish_kernel<<<grid_for(g.C, 128), 128, 0, stream()>>>(g.C, slices, partial.as<double2>(), finish);
  KINDLING_CUDA_LAUNCH_CHECK("channel_finish_kernel");
}

}  // namespace kindling::cuda
