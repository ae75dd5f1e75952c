// CUDA softmax over the last dim of contiguous [rows, C] tensors: a block per row (32 to 512
// threads by C), threads stride along the row, row sums combine along block_reduce's fixed tree.
// The row maximum is subtracted before exp, as on the CPU, so every exp is <= 1 and the sum >= 1.
#include "ops/cuda/block_reduce.cuh"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"
#include "ops/kernel_checks.h"

namespace kindling {
namespace {

struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct Plus {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// in, out [rows, C]; m = max_j in[r,j], s = sum_j exp(in[r,j] - m);
// out[r,j] = exp(in[r,j] - m) / s, or in[r,j] - m - log(s) when log.
template <bool kLog>
__global__ void softmax_fwd_kernel(float* out, const float* in, int64_t rows, int64_t C) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* x = in + r * C;
    float* y = out + r * C;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) m = fmaxf(m, x[j]);
    m = cuda::block_reduce(m, Max{});
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += expf(x[j] - m);
    s = cuda::block_reduce(s, Plus{});
    if (kLog) {
      const float shift = m + logf(s);
      for (int64_t j = threadIdx.x; j < C; j += blockDim.x) y[j] = x[j] - shift;
    } else {
      const float inv = 1.0f / s;
      for (int64_t j = threadIdx.x; j < C; j += blockDim.x) y[j] = expf(x[j] - m) * inv;
    }
  }
}

// grad_in, grad_out, out [rows, C];
// log:  grad_in = grad_out - exp(out) * sum_j grad_out[r,j]
// else: grad_in = out * (grad_out - sum_j grad_out[r,j] * out[r,j])
template <bool kLog>
__global__ void softmax_bwd_kernel(float* grad_in, const float* grad_out, const float* out, int64_t rows,
                                   int64_t C) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* g = grad_out + r * C;
    const float* y = out + r * C;
    float* dx = grad_in + r * C;
    float s = 0.0f;
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x) s += kLog ? g[j] : g[j] * y[j];
    s = cuda::block_reduce(s, Plus{});
    for (int64_t j = threadIdx.x; j < C; j += blockDim.x)
      dx[j] = kLog ? g[j] - expf(y[j]) * s : y[j] * (g[j] - s);
  }
}

// labels [N] i64 (range-checked by the caller, any stride) -> out [N, C] f32;
// out[n, c] = (c == labels[n]).
__global__ void one_hot_kernel(float* out, const int64_t* labels, int64_t label_stride, int64_t N,
                               int64_t C) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * C;
       i += int64_t(blockDim.x) * gridDim.x)
    out[i] = labels[(i / C) * label_stride] == i % C ? 1.0f : 0.0f;
}

unsigned row_blocks(int64_t rows) {
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(rows, int64_t(cuda::num_sms()) * 32)));
}

}  // namespace

// in, out [rows, C]; out[r,j] = exp(in[r,j] - m) / s, or in[r,j] - m - log(s) when log,
// m = max_j in[r,j], s = sum_j exp(in[r,j] - m): softmax_fwd_kernel, a block per row.
void CudaBackend::softmax_fwd(const Tensor& out, const Tensor& in, bool log) {
  check_rows("softmax_fwd", {&out, &in});
  const int64_t rows = in.size(0), C = in.size(1);
  if (rows == 0 || C == 0) return;
  const int threads = cuda::threads_for_row(C, 512);
  if (log)
    softmax_fwd_kernel<true>
        <<<row_blocks(rows), threads, 0, cuda::stream()>>>(out.data<float>(), in.data<float>(), rows, C);
  else
    softmax_fwd_kernel<false>
        <<<row_blocks(rows), threads, 0, cuda::stream()>>>(out.data<float>(), in.data<float>(), rows, C);
  KINDLING_CUDA_LAUNCH_CHECK("softmax_fwd_kernel");
}

// grad_in, grad_out, out [rows, C];
// log:  grad_in = grad_out - exp(out) * sum_j grad_out[r,j]
// else: grad_in = out * (grad_out - sum_j grad_out[r,j] * out[r,j]): softmax_bwd_kernel, a block per row.
void CudaBackend::softmax_bwd(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) {
  check_rows("softmax_bwd", {&grad_in, &grad_out, &out});
  const int64_t rows = out.size(0), C = out.size(1);
  if (rows == 0 || C == 0) return;
  const int threads = cuda::threads_for_row(C, 512);
  float* dx = grad_in.data<float>();
  const float* g = grad_out.data<float>();
  const float* y = out.data<float>();
  if (log)
    softmax_bwd_kernel<true><<<row_blocks(rows), threads, 0, cuda::stream()>>>(dx, g, y, rows, C);
  else
    softmax_bwd_kernel<false><<<row_blocks(rows), threads, 0, cuda::stream()>>>(dx, g, y, rows, C);
  KINDLING_CUDA_LAUNCH_CHECK("softmax_bwd_kernel");
}

// labels [N] i64 (range-checked by the caller) -> out [N, C] f32; out[n, labels[n]] = 1, else 0.
void CudaBackend::one_hot(const Tensor& out, const Tensor& labels) {
  const int64_t N = out.size(0), C = out.size(1);
  if (N * C == 0) return;
  constexpr int kBlock = 256;
  one_hot_kernel<<<cuda::grid_for(N * C, kBlock), kBlock, 0, cuda::stream()>>>(
      out.data<float>(), labels.data<int64_t>(), labels.stride(0), N, C);
  KINDLING_CUDA_LAUNCH_CHECK("one_hot_kernel");
}

}  // namespace kindling
