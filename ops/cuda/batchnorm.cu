// CUDA batch norm, alone and fused with a residual add and a ReLU, our own kernels: per-channel
// statistics through channel_sums (double accumulators, a fixed order, no atomics), then one
// elementwise pass. x [N,C,...] is treated as [N, C, L] with L the product of the spatial dims. An
// undefined weight acts as 1, an undefined bias as 0. The running variance is updated with the
// unbiased variance, as PyTorch does. The fused forms add the residual and apply the ReLU in the
// elementwise pass, and the ReLU's mask (output > 0) inside both passes of the backward.
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
                 "{} on CUDA: expected a contiguous f32 [{}] per-channel tensor, got {}", op, C,
                 t.describe());
  return t.data<float>();
}

struct SumAndSquares {
  const float* x;
  __device__ double2 operator()(int64_t i, int64_t) const {
    const double v = x[i];
    return make_double2(v, v * v);
  }
};

// Per channel, in double: mean = sum/M, var = sumsq/M - mean² (biased), invstd = 1/sqrt(var + eps);
// running = (1 - momentum)*running + momentum*stat, with the unbiased var*M/(M-1); and the map
// y = (x - mean)*scale + bias, scale = invstd*weight, as the CPU computes it (the mean subtracted
// first, so a large mean does not cancel in float).
struct TrainStats {
  float* save_mean;
  float* save_invstd;
  float* running_mean;  // both null or both set
  float* running_var;
  const float* weight;  // null: 1
  const float* bias;    // null: 0
  float4* norm;         // (mean, scale, bias, unused) per channel, for the normalising pass
  double count, momentum, eps;
  __device__ void operator()(int64_t c, double2 sums) const {
    const double mean = sums.x / count;
    const double var = fmax(sums.y / count - mean * mean, 0.0);
    const double invstd = 1.0 / sqrt(var + eps);
    save_mean[c] = float(mean);
    save_invstd[c] = float(invstd);
    if (running_mean != nullptr) {
      const double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
      running_mean[c] = float((1.0 - momentum) * double(running_mean[c]) + momentum * mean);
      running_var[c] = float((1.0 - momentum) * double(running_var[c]) + momentum * unbiased);
    }
    const double scale = invstd * (weight ? double(weight[c]) : 1.0);
    norm[c] = make_float4(float(mean), float(scale), bias ? bias[c] : 0.0f, 0.0f);
  }
};

// [C]: (mean, scale, bias) = (running_mean, weight / sqrt(running_var + eps), bias), scale in double.
__global__ void eval_norm_kernel(float4* norm, const float* running_mean, const float* running_var,
                                 const float* weight, const float* bias, double eps, int64_t C) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C;
       c += int64_t(blockDim.x) * gridDim.x) {
    const double scale = (weight ? double(weight[c]) : 1.0) / sqrt(double(running_var[c]) + eps);
    norm[c] = make_float4(running_mean[c], float(scale), bias ? bias[c] : 0.0f, 0.0f);
  }
}

// x, y, residual [N,C,L]; y = (x - mean[c])*scale[c] + bias[c], then + residual[i] (when given) and
// max(0, .) as relu computes it (when kRelu; NaN becomes 0)
template <bool kRelu>
__global__ void channel_norm_kernel(float* y, const float* x, const float* residual, const float4* norm,
                                    int64_t C, int64_t L, int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float4 k = norm[(i / L) % C];
    float v = (x[i] - k.x) * k.y + k.z;
    if (residual != nullptr) v = v + residual[i];
    if (kRelu) v = v > 0.0f ? v : 0.0f;
    y[i] = v;
  }
}

// The epilogue of the normalising pass: none (batch_norm), or residual (may be undefined) + ReLU.
struct Epilogue {
  bool relu = false;
  const Tensor* residual = nullptr;
};

void launch_channel_norm(const Tensor& y, const Tensor& x, const float4* norm, const cuda::ChannelGeometry& g,
                         const Epilogue& epilogue) {
  const Tensor* r = epilogue.residual;
  const bool has_residual = r != nullptr && r->defined();
  KINDLING_CHECK(!has_residual || (r->shape() == x.shape() && r->dtype() == DType::f32 && r->is_contiguous()),
                 ShapeError,
                 "batch_norm_relu on CUDA: expected a contiguous f32 residual shaped like x {}, "
                 "got {}",
                 x.describe(), r->describe());
  const float* residual = has_residual ? r->data<float>() : nullptr;
  const unsigned grid = cuda::grid_for(x.numel(), kBlock);
  float* out = y.data<float>();
  const float* in = x.data<float>();
  const int64_t total = x.numel();
  if (epilogue.relu)
    channel_norm_kernel<true><<<grid, kBlock, 0, cuda::stream()>>>(out, in, residual, norm, g.C, g.L, total);
  else
    channel_norm_kernel<false><<<grid, kBlock, 0, cuda::stream()>>>(out, in, residual, norm, g.C, g.L, total);
  KINDLING_CUDA_LAUNCH_CHECK("channel_norm_kernel");
}

// The gradient reaching the normalised value: dy, or dy where the fused op's output y > 0, else 0.
__device__ inline float grad_in(const float* dy, const float* relu_output, int64_t i) {
  return relu_output == nullptr || relu_output[i] > 0.0f ? dy[i] : 0.0f;
}

// Per channel: sum g, and sum g * xhat with xhat = (x - mean) * invstd, g = grad_in(dy, relu_output).
struct GradSums {
  const float* dy;
  const float* relu_output;  // null: no ReLU
  const float* x;
  const float* mean;
  const float* invstd;
  __device__ double2 operator()(int64_t i, int64_t c) const {
    const double g = grad_in(dy, relu_output, i);
    return make_double2(g, g * (double(x[i]) - double(mean[c])) * double(invstd[c]));
  }
};

// dbias = sum dy, dweight = sum dy*xhat (when wanted), and the constants of
// dx = a*dy + b*(x - mean) + d: k = invstd*weight, a = k, b = -k*invstd*sum_dy_xhat/M, d = -k*sum_dy/M.
struct GradFinish {
  const float* mean;
  const float* invstd;
  const float* weight;  // null: 1
  float* dweight;
  float* dbias;
  float4* dx_coef;  // (a, b, d, mean)
  double count;
  __device__ void operator()(int64_t c, double2 sums) const {
    if (dbias) dbias[c] = float(sums.x);
    if (dweight) dweight[c] = float(sums.y);
    const double k = double(invstd[c]) * (weight ? double(weight[c]) : 1.0);
    dx_coef[c] = make_float4(float(k), float(-k * double(invstd[c]) * sums.y / count),
                             float(-k * sums.x / count), mean[c]);
  }
};

// dx [N,C,L] = a*g + b*(x - mean) + d with GradFinish's per-channel constants and g = grad_in(dy,
// relu_output); dresidual = g. dx, dresidual: either may be null.
__global__ void batch_norm_dx_kernel(float* dx, float* dresidual, const float* dy, const float* relu_output,
                                     const float* x, const float4* coef, int64_t C, int64_t L,
                                     int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float g = grad_in(dy, relu_output, i);
    if (dresidual != nullptr) dresidual[i] = g;
    if (dx == nullptr) continue;
    const float4 k = coef[(i / L) % C];
    dx[i] = k.x * g + k.y * (x[i] - k.w) + k.z;
  }
}

void forward_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                   const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                   const Tensor& weight, const Tensor& bias, float momentum, float eps,
                   const Epilogue& epilogue) {
  const char* op = epilogue.relu ? "batch_norm_relu_fwd_train" : "batch_norm_fwd_train";
  const cuda::ChannelGeometry g = geometry(op, x);
  KINDLING_CHECK(running_mean.defined() == running_var.defined(), ValueError,
                 "{}: running_mean and running_var must be both defined or both undefined", op);
  if (x.numel() == 0) return;
  cuda::DeviceBuffer norm(size_t(g.C) * sizeof(float4));
  const TrainStats stats{channel_ptr(op, save_mean, g.C),
                         channel_ptr(op, save_invstd, g.C),
                         channel_ptr(op, running_mean, g.C),
                         channel_ptr(op, running_var, g.C),
                         channel_ptr(op, weight, g.C),
                         channel_ptr(op, bias, g.C),
                         norm.as<float4>(),
                         double(g.N * g.L),
                         double(momentum),
                         double(eps)};
  cuda::channel_sums(op, g, SumAndSquares{x.data<float>()}, stats);
  launch_channel_norm(y, x, norm.as<float4>(), g, epilogue);
}

void forward_eval(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, float eps,
                  const Epilogue& epilogue) {
  const char* op = epilogue.relu ? "batch_norm_relu_fwd_eval" : "batch_norm_fwd_eval";
  const cuda::ChannelGeometry g = geometry(op, x);
  KINDLING_CHECK(running_mean.defined() && running_var.defined(), ValueError,
                 "{}: evaluation mode needs running_mean and running_var", op);
  if (x.numel() == 0) return;
  cuda::DeviceBuffer norm(size_t(g.C) * sizeof(float4));
  eval_norm_kernel<<<cuda::grid_for(g.C, 128), 128, 0, cuda::stream()>>>(
      norm.as<float4>(), channel_ptr(op, running_mean, g.C), channel_ptr(op, running_var, g.C),
      channel_ptr(op, weight, g.C), channel_ptr(op, bias, g.C), double(eps), g.C);
  KINDLING_CUDA_LAUNCH_CHECK("eval_norm_kernel");
  launch_channel_norm(y, x, norm.as<float4>(), g, epilogue);
}

// relu_output: null for batch_norm_bwd. dx, dresidual, dweight, dbias may be undefined.
void backward(const char* op, const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
              const Tensor& dresidual, const Tensor& dy, const float* relu_output, const Tensor& x,
              const Tensor& weight, const Tensor& save_mean, const Tensor& save_invstd) {
  const cuda::ChannelGeometry g = geometry(op, x);
  for (const Tensor* t : {&dx, &dy, &dresidual})
    KINDLING_CHECK(
        !t->defined() || (t->shape() == x.shape() && t->dtype() == DType::f32 && t->is_contiguous()),
        ShapeError, "{} on CUDA: expected contiguous f32 gradients shaped like x {}, got {}", op,
        x.describe(), t->describe());
  if (g.C == 0) return;
  const float* mean = channel_ptr(op, save_mean, g.C);
  const float* invstd = channel_ptr(op, save_invstd, g.C);
  cuda::DeviceBuffer coef(size_t(g.C) * sizeof(float4));
  cuda::channel_sums(op, g, GradSums{dy.data<float>(), relu_output, x.data<float>(), mean, invstd},
                     GradFinish{mean, invstd, channel_ptr(op, weight, g.C), channel_ptr(op, dweight, g.C),
                                channel_ptr(op, dbias, g.C), coef.as<float4>(), double(g.N * g.L)});
  if ((!dx.defined() && !dresidual.defined()) || x.numel() == 0) return;
  batch_norm_dx_kernel<<<cuda::grid_for(x.numel(), kBlock), kBlock, 0, cuda::stream()>>>(
      dx.defined() ? dx.data<float>() : nullptr, dresidual.defined() ? dresidual.data<float>() : nullptr,
      dy.data<float>(), relu_output, x.data<float>(), coef.as<float4>(), g.C, g.L, x.numel());
  KINDLING_CUDA_LAUNCH_CHECK("batch_norm_dx_kernel");
}

}  // namespace

void CudaBackend::batch_norm_fwd_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                                       const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                                       const Tensor& weight, const Tensor& bias, float momentum, float eps) {
  forward_train(y, save_mean, save_invstd, running_mean, running_var, x, weight, bias, momentum, eps, {});
}

void CudaBackend::batch_norm_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                      const Tensor& bias, const Tensor& running_mean,
                                      const Tensor& running_var, float eps) {
  forward_eval(y, x, weight, bias, running_mean, running_var, eps, {});
}

// dx may be undefined (only the parameter gradients wanted); dweight, dbias likewise.
void CudaBackend::batch_norm_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                 const Tensor& dy, const Tensor& x, const Tensor& weight,
                                 const Tensor& save_mean, const Tensor& save_invstd) {
  backward("batch_norm_bwd", dx, dweight, dbias, Tensor(), dy, nullptr, x, weight, save_mean, save_invstd);
}

void CudaBackend::batch_norm_relu_fwd_train(const Tensor& y, const Tensor& save_mean,
                                            const Tensor& save_invstd, const Tensor& running_mean,
                                            const Tensor& running_var, const Tensor& x, const Tensor& weight,
                                            const Tensor& bias, const Tensor& residual, float momentum,
                                            float eps) {
  forward_train(y, save_mean, save_invstd, running_mean, running_var, x, weight, bias, momentum, eps,
                Epilogue{true, &residual});
}

void CudaBackend::batch_norm_relu_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                           const Tensor& bias, const Tensor& residual,
                                           const Tensor& running_mean, const Tensor& running_var, float eps) {
  forward_eval(y, x, weight, bias, running_mean, running_var, eps, Epilogue{true, &residual});
}

void CudaBackend::batch_norm_relu_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                      const Tensor& dresidual, const Tensor& dy, const Tensor& y,
                                      const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                                      const Tensor& save_invstd) {
  KINDLING_CHECK(y.shape() == x.shape() && y.dtype() == DType::f32 && y.is_contiguous(), ShapeError,
                 "batch_norm_relu_bwd on CUDA: expected the contiguous f32 output shaped like x {}, got {}",
                 x.describe(), y.describe());
  backward("batch_norm_relu_bwd", dx, dweight, dbias, dresidual, dy, y.data<float>(), x, weight, save_mean,
           save_invstd);
}

}  // namespace kindling
