// CPU optimizer steps: one fused pass over each parameter's elements, split over the thread pool.
// Each element's update reads and writes only its own index, so any split gives the same result.
#include "ops/cpu/cpu_backend.h"

#include "core/parallel.h"

#include <cmath>

namespace kindling {
namespace {

constexpr int64_t kGrain = 16384;

void check_same_numel(const char* op, const Tensor& param, std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others)
    KINDLING_CHECK(t->numel() == param.numel() && t->is_contiguous() && param.is_contiguous(), ShapeError,
                   "{}: state {} does not match parameter {} (same element count, contiguous)", op,
                   t->describe(), param.describe());
}

}  // namespace

// param, grad, momentum_buffer [numel] (buffer unused and may be undefined when momentum == 0):
// g = grad + wd*p; buf = first_step ? g : momentum*buf + (1-dampening)*g;
// g = nesterov ? g + momentum*buf : buf (g itself when momentum == 0); p -= lr*g.
void CpuBackend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                          const SgdArgs& args) {
  const bool use_momentum = args.momentum != 0.0f;
  check_same_numel("sgd_step", param, {&grad});
  if (use_momentum) check_same_numel("sgd_step", param, {&momentum_buffer});
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* buf = use_momentum ? momentum_buffer.data<float>() : nullptr;
  const float lr = args.lr, wd = args.weight_decay, mu = args.momentum, damp = 1.0f - args.dampening;
  parallel_for(0, param.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float d = g[i] + wd * p[i];
      if (use_momentum) {
        const float b = args.first_step ? d : mu * buf[i] + damp * d;
        buf[i] = b;
        d = args.nesterov ? d + mu * b : b;
      }
      p[i] -= lr * d;
    }
  });
}

// param, grad, exp_avg (m), exp_avg_sq (v) [numel], t = step >= 1:
// p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²;
// p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)   (PyTorch's arrangement).
void CpuBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                            const Tensor& exp_avg_sq, const AdamWArgs& args) {
  check_same_numel("adamw_step", param, {&grad, &exp_avg, &exp_avg_sq});
  KINDLING_CHECK(args.step >= 1, ValueError, "adamw_step: step must be >= 1, got {}", args.step);
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  const double t = double(args.step);
  const float step_size = float(double(args.lr) / (1.0 - std::pow(double(args.beta1), t)));
  const float inv_sqrt_bc2 = float(1.0 / std::sqrt(1.0 - std::pow(double(args.beta2), t)));
  const float decay = 1.0f - args.lr * args.weight_decay;
  const float b1 = args.beta1, b2 = args.beta2, eps = args.eps;
  parallel_for(0, param.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float mi = b1 * m[i] + (1.0f - b1) * gi;
      const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
  });
}

}  // namespace kindling
