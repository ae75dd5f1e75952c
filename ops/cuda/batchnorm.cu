// CUDA batch norm, our own kernels: per-channel statistics through channel_sums (double
// accumulators, a fixed order, no atomics), then one elementwise pass. x [N,C,...] is treated as
// [N, C, L] with L the product of the spatial dims. An undefined weight acts as 1, an undefined
// bias as 0. The running variance is updated with the unbiased variance, as PyTorch does.
#include "ops/cuda/channel_reduce.cuh"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

namespace kindling {
namespace {

constexpr int kBlock = 256;

cuda::ChannelGeometry geometry(const char* op, const Tensor& x) {
  KINDLING_CHECK(x.dim() >= 2 && x.dtype() == DType::f32 && x.is_contiguous(), ShapeError,
                 "{} on CUDA: expected a contiguous f32 [N, C, ...] input, got {}", op, x.describe());
  const int64_t N = x.size(0), C = x.size(1);
  return {N, C, N * C == 0 ? 0 : x.numel() / (N * C)};
}

// Device pointer of an optional per-channel tensor [C], or nullptr when undefined.
float* channel_ptr(const char* op, const Tensor& t, int64_t C) {
  if (!t.defined()) return nullptr;
  KINDLING_CHECK(t.dtype() == DType::f32 && t.is_contiguous() && t.numel() == C, ShapeError,
                 "{} on CUDA: expected a contiguous f32 [{}] per-channel tensor, got {}", op, C, t.describe());
  return t.data<float>();
}

struct SumAndSquares {
  const float* x;
  __device__ double2 operator()(int64_t i, int64_t) const {
    const double v = x[i];
    return make_double2(v, v * v);
  }
};

// mean = sum/n, var = sumsq/n - mean² (biased, in double), invstd = 1/sqrt(var + eps);
// running = (1 - momentum)*running + momentum*stat with the unbiased var * n/(n-1).
struct TrainStats {
  float* save_mean;
  float* save_invstd;
  float* running_mean;   // both null or both set
  float* running_var;
  double count, momentum, eps;
  __device__ void operator()(int64_t c, double2 sums) const {
    const double mean = sums.x / count;
    const double var = fmax(sums.y / count - mean * mean, 0.0);
    save_mean[c] = float(mean);
    save_invstd[c] = float(1.0 / sqrt(var + eps));
    if (running_mean != nullptr) {
      const double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
      running_mean[c] = float((1.0 - momentum) * running_mean[c] + momentum * mean);
      running_var[c] = float((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
  }
};

// x, y [N,C,L]; y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]
__global__ void normalize_kernel(float* y, const float* x, const float* mean, const float* invstd, const float* weight,
                                 const float* bias, int64_t C, int64_t L, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t c = (i / L) % C;
    const float scale = invstd[c] * (weight ? weight[c] : 1.0f);
    y[i] = (x[i] - mean[c]) * scale + (bias ? bias[c] : 0.0f);
  }
}

// x, y [N,C,L]; y = (x - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]
__global__ void normalize_eval_kernel(float* y, const float* x, const float* running_mean, const float* running_var,
                                      const float* weight, const float* bias, float eps, int64_t C, int64_t L,
                                      int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t c = (i / L) % C;
    const float scale = (1.0f / sqrtf(running_var[c] + eps)) * (weight ? weight[c] : 1.0f);
    y[i] = (x[i] - running_mean[c]) * scale + (bias ? bias[c] : 0.0f);
  }
}

// Per channel: sum dy, and sum dy * xhat with xhat = (x - mean) * invstd.
struct GradSums {
  const float* dy;
  const float* x;
  const float* mean;
  const float* invstd;
  __device__ double2 operator()(int64_t i, int64_t c) const {
    const double g = dy[i];
    return make_double2(g, g * (double(x[i]) - double(mean[c])) * double(invstd[c]));
  }
};

// Keeps the sums for the dx pass; dbias = sum dy, dweight = sum dy * xhat when wanted.
struct GradFinish {
  double2* sums_out;
  float* dweight;
  float* dbias;
  __device__ void operator()(int64_t c, double2 sums) const {
    sums_out[c] = sums;
    if (dbias) dbias[c] = float(sums.x);
    if (dweight) dweight[c] = float(sums.y);
  }
};

// dx [N,C,L] = weight[c] * invstd[c] * (dy - sum_dy[c]/n - xhat * sum_dy_xhat[c]/n)
__global__ void batch_norm_dx_kernel(float* dx, const float* dy, const float* x, const float* weight, const float* mean,
                                     const float* invstd, const double2* sums, double count, int64_t C, int64_t L,
                                     int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t c = (i / L) % C;
    const float xhat = (x[i] - mean[c]) * invstd[c];
    const float mean_dy = float(sums[c].x / count), mean_dy_xhat = float(sums[c].y / count);
    dx[i] = (weight ? weight[c] : 1.0f) * invstd[c] * (dy[i] - mean_dy - xhat * mean_dy_xhat);
  }
}

}  // namespace

void CudaBackend::batch_norm_fwd_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                                       const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                                       const Tensor& weight, const Tensor& bias, float momentum, float eps) {
  const char* op = "batch_norm_fwd_train";
  const cuda::ChannelGeometry g = geometry(op, x);
  KINDLING_CHECK(running_mean.defined() == running_var.defined(), ValueError,
                 "{}: running_mean and running_var must be both defined or both undefined", op);
  const TrainStats stats{channel_ptr(op, save_mean, g.C), channel_ptr(op, save_invstd, g.C),
                         channel_ptr(op, running_mean, g.C), channel_ptr(op, running_var, g.C),
                         double(g.N * g.L), double(momentum), double(eps)};
  if (x.numel() == 0) return;
  cuda::channel_sums(op, g, SumAndSquares{x.data<float>()}, stats);
  normalize_kernel<<<cuda::grid_for(x.numel(), kBlock), kBlock, 0, cuda::stream()>>>(
      y.data<float>(), x.data<float>(), stats.save_mean, stats.save_invstd, channel_ptr(op, weight, g.C),
      channel_ptr(op, bias, g.C), g.C, g.L, x.numel());
  KINDLING_CUDA_LAUNCH_CHECK("normalize_kernel");
}

void CudaBackend::batch_norm_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                      const Tensor& running_mean, const Tensor& running_var, float eps) {
  const char* op = "batch_norm_fwd_eval";
  const cuda::ChannelGeometry g = geometry(op, x);
  KINDLING_CHECK(running_mean.defined() && running_var.defined(), ValueError,
                 "{}: evaluation mode needs running_mean and running_var", op);
  if (x.numel() == 0) return;
  normalize_eval_kernel<<<cuda::grid_for(x.numel(), kBlock), kBlock, 0, cuda::stream()>>>(
      y.data<float>(), x.data<float>(), channel_ptr(op, running_mean, g.C), channel_ptr(op, running_var, g.C),
      channel_ptr(op, weight, g.C), channel_ptr(op, bias, g.C), eps, g.C, g.L, x.numel());
  KINDLING_CUDA_LAUNCH_CHECK("normalize_eval_kernel");
}

void CudaBackend::batch_norm_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                                 const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                                 const Tensor& save_invstd) {
  const char* op = "batch_norm_bwd";
  const cuda::ChannelGeometry g = geometry(op, x);
  for (const Tensor* t : {&dx, &dy})
    KINDLING_CHECK(t->shape() == x.shape() && t->dtype() == DType::f32 && t->is_contiguous(), ShapeError,
                   "{} on CUDA: expected contiguous f32 gradients shaped like x {}, got {}", op, x.describe(),
                   t->describe());
  if (g.C == 0) return;
  const float* mean = channel_ptr(op, save_mean, g.C);
  const float* invstd = channel_ptr(op, save_invstd, g.C);
  cuda::DeviceBuffer sums(size_t(g.C) * sizeof(double2));
  cuda::channel_sums(op, g, GradSums{dy.data<float>(), x.data<float>(), mean, invstd},
                     GradFinish{sums.as<double2>(), channel_ptr(op, dweight, g.C), channel_ptr(op, dbias, g.C)});
  if (x.numel() == 0) return;
  batch_norm_dx_kernel<<<cuda::grid_for(x.numel(), kBlock), kBlock, 0, cuda::stream()>>>(
      dx.data<float>(), dy.data<float>(), x.data<float>(), channel_ptr(op, weight, g.C), mean, invstd,
      sums.as<double2>(), double(g.N * g.L), g.C, g.L, x.numel());
  KINDLING_CUDA_LAUNCH_CHECK("batch_norm_dx_kernel");
}

}  // namespace kindling
