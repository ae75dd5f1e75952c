// CUDA reductions over contiguous f32 viewed as [outer, reduce, inner]. Two kernels by layout:
// inner == 1 reduces rows (a block per row, threads stride along it), inner > 1 reduces columns
// (threads along inner for coalescing, 8 slices of the reduce dim per block). Every thread
// accumulates a fixed subset in order and the partials combine along a fixed tree: deterministic,
// no atomics. Sums accumulate in double, like the CPU. Max/Min propagate NaN; ArgMax/ArgMin return
// the first index of the extreme (of the first NaN, if any).
#include "ops/cuda/block_reduce.cuh"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

#include <cmath>

namespace kindling {
namespace cuda {
namespace {

struct ArgAcc {
  float value;
  int64_t index;  // -1: nothing seen yet
};
__device__ inline ArgAcc shfl_down(ArgAcc v, int offset) {
  return {__shfl_down_sync(0xffffffffu, v.value, offset), __shfl_down_sync(0xffffffffu, v.index, offset)};
}

// Sum (x² for SumSquares), accumulated in double; Mean divides by the count at the end.
template <bool kSquares, bool kMean>
struct SumReducer {
  using Acc = double;
  using Out = float;
  __device__ static Acc init() { return 0.0; }
  __device__ static Acc step(Acc acc, float x, int64_t) {
    return acc + (kSquares ? double(x) * double(x) : double(x));
  }
  __device__ static Acc combine(Acc a, Acc b) { return a + b; }
  __device__ static Out finish(Acc acc, int64_t count) { return float(kMean ? acc / double(count) : acc); }
};

// x beats y for the maximum (kMax) or the minimum; NaN beats every number.
template <bool kMax>
__device__ inline bool beats(float x, float y) {
  if (isnan(x)) return !isnan(y);
  return kMax ? x > y : x < y;
}

template <bool kMax>
struct ExtremeReducer {
  using Acc = float;
  using Out = float;
  __device__ static Acc init() { return kMax ? -INFINITY : INFINITY; }
  __device__ static Acc step(Acc acc, float x, int64_t) { return beats<kMax>(x, acc) ? x : acc; }
  __device__ static Acc combine(Acc a, Acc b) { return beats<kMax>(b, a) ? b : a; }
  __device__ static Out finish(Acc acc, int64_t) { return acc; }
};

template <bool kMax>
struct ArgReducer {
  using Acc = ArgAcc;
  using Out = int64_t;
  __device__ static Acc init() { return {kMax ? -INFINITY : INFINITY, -1}; }
  // Each thread sees its indices in increasing order, so a tie keeps the earlier one.
  __device__ static Acc step(Acc acc, float x, int64_t r) {
    return acc.index < 0 || beats<kMax>(x, acc.value) ? Acc{x, r} : acc;
  }
  __device__ static Acc combine(Acc a, Acc b) {
    if (b.index < 0) return a;
    if (a.index < 0 || beats<kMax>(b.value, a.value)) return b;
    if (!beats<kMax>(a.value, b.value) && b.index < a.index) return b;  // a tie: the first index
    return a;
  }
  __device__ static Out finish(Acc acc, int64_t) { return acc.index; }  // -1 for an empty row, as on the CPU
};

// in [outer, reduce] -> out [outer]; out[o] = R over r of in[o,r] (R::step in order, R::combine along
// block_reduce's tree, R::finish). Block o reduces row o with blockDim.x threads.
template <typename R>
__global__ void reduce_rows_kernel(const float* in, typename R::Out* out, int64_t outer, int64_t reduce) {
  for (int64_t o = blockIdx.x; o < outer; o += gridDim.x) {
    const float* row = in + o * reduce;
    typename R::Acc acc = R::init();
    for (int64_t r = threadIdx.x; r < reduce; r += blockDim.x) acc = R::step(acc, row[r], r);
    acc = block_reduce(acc, [](typename R::Acc a, typename R::Acc b) { return R::combine(a, b); });
    if (threadIdx.x == 0) out[o] = R::finish(acc, reduce);
  }
}

constexpr int kColumnsPerBlock = 32;  // blockDim.x: consecutive inner indices, coalesced loads
constexpr int kSlicesPerBlock = 8;    // blockDim.y: interleaved slices of the reduce dim

// in [outer, reduce, inner] -> out [outer, inner]; out[o,i] = R over r of in[o,r,i]. A block covers
// 32 columns of one outer index.
template <typename R>
__global__ void reduce_columns_kernel(const float* in, typename R::Out* out, int64_t outer, int64_t reduce,
                                      int64_t inner) {
  __shared__ typename R::Acc partial[kSlicesPerBlock][kColumnsPerBlock];
  const int64_t column_blocks = (inner + kColumnsPerBlock - 1) / kColumnsPerBlock;
  for (int64_t b = blockIdx.x; b < outer * column_blocks; b += gridDim.x) {
    const int64_t o = b / column_blocks;
    const int64_t i = (b % column_blocks) * kColumnsPerBlock + threadIdx.x;
    typename R::Acc acc = R::init();
    if (i < inner) {
      const float* column = in + o * reduce * inner + i;
      for (int64_t r = threadIdx.y; r < reduce; r += kSlicesPerBlock)
        acc = R::step(acc, column[r * inner], r);
    }
    __syncthreads();  // the previous iteration's readers of `partial` are done
    partial[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      for (int s = 1; s < kSlicesPerBlock; ++s) acc = R::combine(acc, partial[s][threadIdx.x]);
      out[o * inner + i] = R::finish(acc, reduce);
    }
  }
}

template <typename R>
void launch_reduce(const float* in, void* out, int64_t outer, int64_t reduce, int64_t inner) {
  auto* typed_out = static_cast<typename R::Out*>(out);
  if (inner == 1) {
    const int threads = threads_for_row(reduce, 512);
    const unsigned blocks = unsigned(std::min<int64_t>(outer, int64_t(num_sms()) * 32));
    reduce_rows_kernel<R><<<blocks, threads, 0, stream()>>>(in, typed_out, outer, reduce);
    KINDLING_CUDA_LAUNCH_CHECK("reduce_rows_kernel");
  } else {
    const int64_t blocks_needed = outer * ((inner + kColumnsPerBlock - 1) / kColumnsPerBlock);
    const unsigned blocks = unsigned(std::min<int64_t>(blocks_needed, int64_t(num_sms()) * 8));
    reduce_columns_kernel<R><<<blocks, dim3(kColumnsPerBlock, kSlicesPerBlock), 0, stream()>>>(
        in, typed_out, outer, reduce, inner);
    KINDLING_CUDA_LAUNCH_CHECK("reduce_columns_kernel");
  }
}

}  // namespace
}  // namespace cuda

// in [outer, reduce, inner] contiguous f32 -> out [outer, inner];
// out[o,i] = op_{r} in[o,r,i]  (Sum, Mean = Sum/reduce, SumSquares = sum x², Max, Min, ArgMax, ArgMin).
void CudaBackend::reduce(ReduceOp op, const Tensor& out, const Tensor& in, int64_t outer, int64_t reduce,
                         int64_t inner) {
  KINDLING_CHECK(in.dtype() == DType::f32 && in.is_contiguous(), DTypeError,
                 "reduce: expected a contiguous f32 input, got {}", in.describe());
  const bool arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  KINDLING_CHECK(out.dtype() == (arg ? DType::i64 : DType::f32) && out.is_contiguous(), DTypeError,
                 "reduce: expected a contiguous {} output, got {}", arg ? "i64" : "f32", out.describe());
  if (outer * inner == 0) return;
  const float* x = in.data<float>();
  void* y = out.data_ptr();
  using namespace cuda;
  switch (op) {
    case ReduceOp::Sum:
      return launch_reduce<SumReducer<false, false>>(x, y, outer, reduce, inner);
    case ReduceOp::Mean:
      return launch_reduce<SumReducer<false, true>>(x, y, outer, reduce, inner);
    case ReduceOp::SumSquares:
      return launch_reduce<SumReducer<true, false>>(x, y, outer, reduce, inner);
    case ReduceOp::Max:
      return launch_reduce<ExtremeReducer<true>>(x, y, outer, reduce, inner);
    case ReduceOp::Min:
      return launch_reduce<ExtremeReducer<false>>(x, y, outer, reduce, inner);
    case ReduceOp::ArgMax:
      return launch_reduce<ArgReducer<true>>(x, y, outer, reduce, inner);
    case ReduceOp::ArgMin:
      return launch_reduce<ArgReducer<false>>(x, y, outer, reduce, inner);
  }
}

}  // namespace kindling
