// CUDA optimizer steps: one fused elementwise kernel per parameter, reading and writing each of
// param, grad and state once. The formulas are core/backend.h's SgdArgs and AdamWArgs, in f32, in
// the CPU kernel's order of operations; this file is compiled with --fmad=false (CMakeLists.txt), as
// ops/cpu/optim.cpp is without contraction, so every product and sum is rounded as on the CPU.
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

#include <cmath>

namespace kindling {
namespace {

constexpr int kBlock = 256;

void check_same(const char* op, const Tensor& param, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    KINDLING_CHECK(t->dtype() == DType::f32 && t->is_contiguous() && t->numel() == param.numel(), ShapeError,
                   "{} on CUDA: expected contiguous f32 tensors of {} elements like the parameter, got {}",
                   op, param.numel(), t->describe());
}

// param, grad, buf [n]; g = grad + wd*p; buf = first ? g : momentum*buf + (1-dampening)*g;
// g = nesterov ? g + momentum*buf : buf (g itself when momentum == 0); p -= lr*g
__global__ void sgd_step_kernel(float* param, const float* grad, float* buf, int64_t n, SgdArgs a) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    float g = grad[i] + a.weight_decay * param[i];
    if (a.momentum != 0.0f) {
      const float b = a.first_step ? g : a.momentum * buf[i] + (1.0f - a.dampening) * g;
      buf[i] = b;
      g = a.nesterov ? g + a.momentum * b : b;
    }
    param[i] -= a.lr * g;
  }
}

// param, grad, m, v [n]; p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²;
// p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)   (PyTorch's arrangement, as on the CPU)
__global__ void adamw_step_kernel(float* param, const float* grad, float* m, float* v, int64_t n, float b1,
                                  float b2, float eps, float decay, float step_size, float inv_sqrt_bias2) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float g = grad[i];
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bias2 + eps);
  }
}

}  // namespace

void CudaBackend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                           const SgdArgs& args) {
  check_same("sgd_step", param, {&param, &grad});
  if (args.momentum != 0.0f) {
    KINDLING_CHECK(momentum_buffer.defined(), ValueError,
                   "sgd_step on CUDA: momentum {} needs a momentum buffer", args.momentum);
    check_same("sgd_step", param, {&momentum_buffer});
  }
  const int64_t n = param.numel();
  if (n == 0) return;
  sgd_step_kernel<<<cuda::grid_for(n, kBlock), kBlock, 0, cuda::stream()>>>(
      param.data<float>(), grad.data<float>(),
      args.momentum != 0.0f ? momentum_buffer.data<float>() : nullptr, n, args);
  KINDLING_CUDA_LAUNCH_CHECK("sgd_step_kernel");
}

void CudaBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                             const Tensor& exp_avg_sq, const AdamWArgs& args) {
  check_same("adamw_step", param, {&param, &grad, &exp_avg, &exp_avg_sq});
  const int64_t n = param.numel();
  if (n == 0) return;
  KINDLING_CHECK(args.step >= 1, ValueError, "adamw_step: step must be >= 1, got {}", args.step);
  // Bias corrections once per step on the host, in double.
  const double t = double(args.step);
  const float step_size = float(double(args.lr) / (1.0 - std::pow(double(args.beta1), t)));
  const float inv_sqrt_bias2 = float(1.0 / std::sqrt(1.0 - std::pow(double(args.beta2), t)));
  const float decay = 1.0f - args.lr * args.weight_decay;
  adamw_step_kernel<<<cuda::grid_for(n, kBlock), kBlock, 0, cuda::stream()>>>(
      param.data<float>(), grad.data<float>(), exp_avg.data<float>(), exp_avg_sq.data<float>(), n, args.beta1,
      args.beta2, args.eps, decay, step_size, inv_sqrt_bias2);
  KINDLING_CUDA_LAUNCH_CHECK("adamw_step_kernel");
}

}  // namespace kindling
