// CUDA pooling, our own kernels: a thread per output element forward; backward a thread per input
// element that gathers from every window covering it, in a fixed order, so overlapping windows
// need no atomics and results are deterministic. Max pooling keeps, per output, the index into
// the H*W plane of the first maximum, or of the last NaN when the window holds any, as the CPU and
// PyTorch do.
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

namespace kindling {
namespace {

constexpr int kBlock = 256;

void check_pool_tensors(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    KINDLING_CHECK(t->is_contiguous(), ShapeError, "{} on CUDA: expected contiguous tensors, got {}", op,
                   t->describe());
}

// The range [first, last] of window starts along one axis whose window covers position h.
struct Covering {
  int64_t first, last;
};
__device__ inline Covering windows_covering(int64_t h, int64_t pad, int64_t stride, int64_t window,
                                            int64_t outputs) {
  // window p covers h when p*stride - pad <= h <= p*stride - pad + window - 1
  const int64_t hi = h + pad;
  const int64_t first = hi - window + 1 <= 0 ? 0 : (hi - window + 1 + stride - 1) / stride;
  const int64_t last = min(hi / stride, outputs - 1);
  return {first, last};
}

// x [N,C,H,W] -> y, indices [N,C,P,Q]; y[n,c,p,q] = max over the in-bounds window
// x[n,c, p*sh - ph + r, q*sw - pw + s], indices = h*W + w of the first maximum (of the last NaN
// when the window holds any: a NaN replaces the running maximum).
__global__ void max_pool_fwd_kernel(Pool2dParams p, float* y, int64_t* indices, const float* x,
                                    int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t q = i % p.Q, pp = (i / p.Q) % p.P, plane = i / (p.P * p.Q);
    const float* xp = x + plane * p.H * p.W;
    const int64_t h0 = pp * p.stride_h - p.pad_h, w0 = q * p.stride_w - p.pad_w;
    const int64_t h_begin = max(h0, int64_t(0)), h_end = min(h0 + p.R, p.H);
    const int64_t w_begin = max(w0, int64_t(0)), w_end = min(w0 + p.S, p.W);
    float best = -INFINITY;
    int64_t best_index = h_begin * p.W + w_begin;
    for (int64_t h = h_begin; h < h_end; ++h)
      for (int64_t w = w_begin; w < w_end; ++w) {
        const float v = xp[h * p.W + w];
        if (v > best || isnan(v)) {
          best = v;
          best_index = h * p.W + w;
        }
      }
    y[i] = best;
    indices[i] = best_index;
  }
}

// dy, indices [N,C,P,Q] -> dx [N,C,H,W]; dx[n,c,h,w] = sum of dy[n,c,p,q] over the windows
// covering (h, w) whose kept index is h*W + w.
__global__ void max_pool_bwd_kernel(Pool2dParams p, float* dx, const float* dy, const int64_t* indices,
                                    int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t w = i % p.W, h = (i / p.W) % p.H, plane = i / (p.H * p.W);
    const Covering rows = windows_covering(h, p.pad_h, p.stride_h, p.R, p.P);
    const Covering cols = windows_covering(w, p.pad_w, p.stride_w, p.S, p.Q);
    const int64_t here = h * p.W + w;
    float sum = 0.0f;
    for (int64_t pp = rows.first; pp <= rows.last; ++pp)
      for (int64_t q = cols.first; q <= cols.last; ++q) {
        const int64_t o = (plane * p.P + pp) * p.Q + q;
        if (indices[o] == here) sum += dy[o];
      }
    dx[i] = sum;
  }
}

// The divisor of output (pp, q), as the CPU and PyTorch define it: the window's area clipped to the
// padded image (count_include_pad), or to the image itself.
__device__ inline float avg_divisor(const Pool2dParams& p, int64_t pp, int64_t q) {
  const int64_t h0 = pp * p.stride_h - p.pad_h, w0 = q * p.stride_w - p.pad_w;
  const int64_t h1 = min(h0 + p.R, p.H + p.pad_h), w1 = min(w0 + p.S, p.W + p.pad_w);
  const int64_t area = p.count_include_pad
                           ? (h1 - h0) * (w1 - w0)
                           : (min(h1, p.H) - max(h0, int64_t(0))) * (min(w1, p.W) - max(w0, int64_t(0)));
  return float(max(area, int64_t(1)));
}

// x [N,C,H,W] -> y [N,C,P,Q]; y[n,c,p,q] = sum over the in-bounds window / avg_divisor(p, q)
__global__ void avg_pool_fwd_kernel(Pool2dParams p, float* y, const float* x, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t q = i % p.Q, pp = (i / p.Q) % p.P, plane = i / (p.P * p.Q);
    const float* xp = x + plane * p.H * p.W;
    const int64_t h0 = pp * p.stride_h - p.pad_h, w0 = q * p.stride_w - p.pad_w;
    float sum = 0.0f;
    for (int64_t h = max(h0, int64_t(0)); h < min(h0 + p.R, p.H); ++h)
      for (int64_t w = max(w0, int64_t(0)); w < min(w0 + p.S, p.W); ++w) sum += xp[h * p.W + w];
    y[i] = sum / avg_divisor(p, pp, q);
  }
}

// dy [N,C,P,Q] -> dx [N,C,H,W]; dx[n,c,h,w] = sum over windows (p,q) covering (h,w) of
// dy[n,c,p,q] / avg_divisor(p, q)
__global__ void avg_pool_bwd_kernel(Pool2dParams p, float* dx, const float* dy, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t w = i % p.W, h = (i / p.W) % p.H, plane = i / (p.H * p.W);
    const Covering rows = windows_covering(h, p.pad_h, p.stride_h, p.R, p.P);
    const Covering cols = windows_covering(w, p.pad_w, p.stride_w, p.S, p.Q);
    float sum = 0.0f;
    for (int64_t pp = rows.first; pp <= rows.last; ++pp)
      for (int64_t q = cols.first; q <= cols.last; ++q)
        sum += dy[(plane * p.P + pp) * p.Q + q] / avg_divisor(p, pp, q);
    dx[i] = sum;
  }
}

}  // namespace

// x [N,C,H,W] -> y, indices [N,C,P,Q]; y = max over the clipped window, indices = h*W + w of the
// first maximum in row-major order, or of the last NaN when the window holds any.
void CudaBackend::max_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& indices,
                                 const Tensor& x) {
  check_pool_tensors("max_pool2d_fwd", {&y, &indices, &x});
  const int64_t total = y.numel();
  if (total == 0) return;
  max_pool_fwd_kernel<<<cuda::grid_for(total, kBlock), kBlock, 0, cuda::stream()>>>(
      p, y.data<float>(), indices.data<int64_t>(), x.data<float>(), total);
  KINDLING_CUDA_LAUNCH_CHECK("max_pool_fwd_kernel");
}

// dy, indices [N,C,P,Q] -> dx [N,C,H,W];  dx[n,c,i] = sum of dy[n,c,p,q] over outputs whose index is i
void CudaBackend::max_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy,
                                 const Tensor& indices) {
  check_pool_tensors("max_pool2d_bwd", {&dx, &dy, &indices});
  const int64_t total = dx.numel();
  if (total == 0) return;
  max_pool_bwd_kernel<<<cuda::grid_for(total, kBlock), kBlock, 0, cuda::stream()>>>(
      p, dx.data<float>(), dy.data<float>(), indices.data<int64_t>(), total);
  KINDLING_CUDA_LAUNCH_CHECK("max_pool_bwd_kernel");
}

// x [N,C,H,W] -> y [N,C,P,Q];  y = sum over the clipped window / divisor (see avg_divisor)
void CudaBackend::avg_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& x) {
  check_pool_tensors("avg_pool2d_fwd", {&y, &x});
  const int64_t total = y.numel();
  if (total == 0) return;
  avg_pool_fwd_kernel<<<cuda::grid_for(total, kBlock), kBlock, 0, cuda::stream()>>>(p, y.data<float>(),
                                                                                    x.data<float>(), total);
  KINDLING_CUDA_LAUNCH_CHECK("avg_pool_fwd_kernel");
}

// dy [N,C,P,Q] -> dx [N,C,H,W];  dx[n,c,h,w] = sum over windows containing (h,w) of dy / divisor
void CudaBackend::avg_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy) {
  check_pool_tensors("avg_pool2d_bwd", {&dx, &dy});
  const int64_t total = dx.numel();
  if (total == 0) return;
  avg_pool_bwd_kernel<<<cuda::grid_for(total, kBlock), kBlock, 0, cuda::stream()>>>(p, dx.data<float>(),
                                                                                    dy.data<float>(), total);
  KINDLING_CUDA_LAUNCH_CHECK("avg_pool_bwd_kernel");
}

}  // namespace kindling
