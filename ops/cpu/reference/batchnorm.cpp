// Reference batch norm: per channel, the statistics and the affine map as the formulas say, in double;
// the fused form with a residual add and a ReLU as that composition.
#include "ops/cpu/reference/reference_backend.h"

#include <cmath>

namespace kindling {
namespace {

// The M = N*H*W values of channel c: fn(i) for each flat index i into x [N,C,H,W].
template <typename Fn>
void for_each_in_channel(const Tensor& x, int64_t c, Fn&& fn) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < HW; ++i) fn((n * C + c) * HW + i);
}

double value_or(const Tensor& t, int64_t c, double fallback) {
  return t.defined() ? double(t.data<float>()[c]) : fallback;
}

// y += residual (when defined), then y = max(0, y) as relu() computes it (NaN becomes 0).
void add_residual_then_relu(const Tensor& y, const Tensor& residual) {
  float* out = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    float v = out[i];
    if (residual.defined()) v = v + residual.data<float>()[i];
    out[i] = v > 0.0f ? v : 0.0f;
  }
}

}  // namespace

// x, y [N,C,H,W]; per channel c over its M = N*H*W values:
//   mean = sum x / M, var = sum (x - mean)² / M, invstd = 1 / sqrt(var + eps),
//   y = (x - mean) * invstd * weight + bias,
//   running_mean += momentum * (mean - running_mean), running_var += momentum * (var*M/(M-1) - running_var).
void ReferenceCpuBackend::batch_norm_fwd_train(const Tensor& y, const Tensor& save_mean,
                                               const Tensor& save_invstd, const Tensor& running_mean,
                                               const Tensor& running_var, const Tensor& x,
                                               const Tensor& weight, const Tensor& bias, float momentum,
                                               float eps) {
  const float* xp = x.data<float>();
  const double M = double(x.numel() / x.size(1));
  for (int64_t c = 0; c < x.size(1); ++c) {
    double sum = 0, squares = 0;
    for_each_in_channel(x, c, [&](int64_t i) { sum += xp[i]; });
    const double mean = sum / M;
    for_each_in_channel(x, c, [&](int64_t i) { squares += (xp[i] - mean) * (xp[i] - mean); });
    const double var = squares / M, invstd = 1.0 / std::sqrt(var + eps);
    const double scale = invstd * value_or(weight, c, 1.0), shift = value_or(bias, c, 0.0);
    for_each_in_channel(x, c, [&](int64_t i) { y.data<float>()[i] = float((xp[i] - mean) * scale + shift); });
    save_mean.data<float>()[c] = float(mean);
    save_invstd.data<float>()[c] = float(invstd);
    if (running_mean.defined()) {
      float& rm = running_mean.data<float>()[c];
      float& rv = running_var.data<float>()[c];
      rm = float(rm + momentum * (mean - rm));
      rv = float(rv + momentum * ((M > 1 ? var * M / (M - 1) : var) - rv));
    }
  }
}

// y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel.
void ReferenceCpuBackend::batch_norm_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                              const Tensor& bias, const Tensor& running_mean,
                                              const Tensor& running_var, float eps) {
  const float* xp = x.data<float>();
  for (int64_t c = 0; c < x.size(1); ++c) {
    const double mean = running_mean.data<float>()[c];
    const double scale = value_or(weight, c, 1.0) / std::sqrt(double(running_var.data<float>()[c]) + eps);
    const double shift = value_or(bias, c, 0.0);
    for_each_in_channel(x, c, [&](int64_t i) { y.data<float>()[i] = float((xp[i] - mean) * scale + shift); });
  }
}

// Training-mode gradients with xhat = (x - mean) * invstd, sums over a channel's M values:
//   dbias = sum dy, dweight = sum dy * xhat, dx = weight * invstd * (dy - dbias/M - xhat * dweight/M).
void ReferenceCpuBackend::batch_norm_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                         const Tensor& dy, const Tensor& x, const Tensor& weight,
                                         const Tensor& save_mean, const Tensor& save_invstd) {
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  const double M = double(x.numel() / x.size(1));
  for (int64_t c = 0; c < x.size(1); ++c) {
    const double mean = save_mean.data<float>()[c], invstd = save_invstd.data<float>()[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for_each_in_channel(x, c, [&](int64_t i) {
      sum_dy += dyp[i];
      sum_dy_xhat += dyp[i] * (xp[i] - mean) * invstd;
    });
    if (dweight.defined()) dweight.data<float>()[c] = float(sum_dy_xhat);
    if (dbias.defined()) dbias.data<float>()[c] = float(sum_dy);
    if (!dx.defined()) continue;
    const double k = value_or(weight, c, 1.0) * invstd;
    for_each_in_channel(x, c, [&](int64_t i) {
      const double xhat = (xp[i] - mean) * invstd;
      dx.data<float>()[i] = float(k * (dyp[i] - sum_dy / M - xhat * sum_dy_xhat / M));
    });
  }
}

// Fused with a residual add and a ReLU, as the composition: y = batch_norm(x), y += residual, y = max(0, y).
void ReferenceCpuBackend::batch_norm_relu_fwd_train(const Tensor& y, const Tensor& save_mean,
                                                    const Tensor& save_invstd, const Tensor& running_mean,
                                                    const Tensor& running_var, const Tensor& x,
                                                    const Tensor& weight, const Tensor& bias,
                                                    const Tensor& residual, float momentum, float eps) {
  batch_norm_fwd_train(y, save_mean, save_invstd, running_mean, running_var, x, weight, bias, momentum, eps);
  add_residual_then_relu(y, residual);
}

void ReferenceCpuBackend::batch_norm_relu_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                                   const Tensor& bias, const Tensor& residual,
                                                   const Tensor& running_mean, const Tensor& running_var,
                                                   float eps) {
  batch_norm_fwd_eval(y, x, weight, bias, running_mean, running_var, eps);
  add_residual_then_relu(y, residual);
}

// g = dy where y > 0, else 0; dresidual = g, and batch_norm_bwd from g.
void ReferenceCpuBackend::batch_norm_relu_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                              const Tensor& dresidual, const Tensor& dy, const Tensor& y,
                                              const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                                              const Tensor& save_invstd) {
  Tensor g = empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i)
    g.data<float>()[i] = y.data<float>()[i] > 0.0f ? dy.data<float>()[i] : 0.0f;
  if (dresidual.defined())
    for (int64_t i = 0; i < x.numel(); ++i) dresidual.data<float>()[i] = g.data<float>()[i];
  batch_norm_bwd(dx, dweight, dbias, g, x, weight, save_mean, save_invstd);
}

}  // namespace kindling
