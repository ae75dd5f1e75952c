// CPU batch norm, alone and fused with a residual add and a ReLU. Channels are independent, so they
// are spread over the thread pool; a channel's values are N planes of H*W contiguous floats.
// Statistics accumulate in double (lane_sums.h), and every pass over the data is a per-channel map
// ((x - mean)*scale + bias, or a*dy + b*(x - mean) + d) that vectorises. Both subtract the mean
// first, so a large mean does not cancel in float. The fused forms do the residual add and the ReLU
// inside the normalising pass, and the ReLU's mask inside the backward's first pass, which stores
// the masked gradient for the second, with the unfused arithmetic: their results equal the
// composition's.
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/lane_sums.h"

#include "core/parallel.h"

#include <algorithm>
#include <cmath>

namespace kindling {
namespace {

struct Layout {
  int64_t N, C, HW;
};
Layout layout_of(const Tensor& x) { return {x.size(0), x.size(1), x.size(2) * x.size(3)}; }

// fn(c) for every channel, in parallel when the tensor is big enough to pay for it.
template <typename Fn>
void for_each_channel(const Layout& l, Fn&& fn) {
  const int64_t per_channel = std::max<int64_t>(1, l.N * l.HW);
  const int64_t grain = std::max<int64_t>(1, 32768 / per_channel);
  parallel_for(0, l.C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) fn(c);
  });
}

// What follows the normalising map: an optional residual (laid out like x) added, then an optional ReLU.
struct Epilogue {
  const float* residual = nullptr;
  bool relu = false;
};

// out = (in - mean)*scale + bias over channel c's planes, then the epilogue: + residual, max(0, .)
// as relu() computes it (x > 0 ? x : 0, so NaN becomes 0). Without an epilogue it is batch_norm's map.
template <bool kResidual, bool kRelu>
void normalise_channel(const Layout& l, int64_t c, const float* in, float* out, float mean, float scale,
                       float bias, const float* residual) {
  for (int64_t n = 0; n < l.N; ++n) {
    const int64_t offset = (n * l.C + c) * l.HW;
    const float* src = in + offset;
    float* dst = out + offset;
    for (int64_t i = 0; i < l.HW; ++i) {
      float v = (src[i] - mean) * scale + bias;
      if constexpr (kResidual) v = v + residual[offset + i];
      if constexpr (kRelu) v = v > 0.0f ? v : 0.0f;
      dst[i] = v;
    }
  }
}

void normalise_channel(const Layout& l, int64_t c, const float* in, float* out, float mean, float scale,
                       float bias, const Epilogue& epilogue) {
  const bool residual = epilogue.residual != nullptr;
  if (residual && epilogue.relu)
    normalise_channel<true, true>(l, c, in, out, mean, scale, bias, epilogue.residual);
  else if (residual)
    normalise_channel<true, false>(l, c, in, out, mean, scale, bias, epilogue.residual);
  else if (epilogue.relu)
    normalise_channel<false, true>(l, c, in, out, mean, scale, bias, nullptr);
  else
    normalise_channel<false, false>(l, c, in, out, mean, scale, bias, nullptr);
}

const float* data_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }
float* mutable_data_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

// x, y [N,C,H,W]; weight, bias, save_mean, save_invstd, running_mean, running_var [C]; M = N*H*W:
// mean = sum x / M, var = sum x² / M - mean²; y = (x - mean) * invstd * weight + bias with
// invstd = 1/sqrt(var + eps), then the epilogue; running_mean += momentum*(mean - running_mean),
// running_var += momentum*(var*M/(M-1) - running_var).
void forward_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                   const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                   const Tensor& weight, const Tensor& bias, float momentum, float eps,
                   const Epilogue& epilogue) {
  const Layout l = layout_of(x);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* weights = data_or_null(weight);
  const float* biases = data_or_null(bias);
  float* mean_out = save_mean.data<float>();
  float* invstd_out = save_invstd.data<float>();
  float* running_means = mutable_data_or_null(running_mean);
  float* running_vars = mutable_data_or_null(running_var);
  const double M = double(l.N * l.HW);
  for_each_channel(l, [&](int64_t c) {
    cpu::MomentSums sums;
    for (int64_t n = 0; n < l.N; ++n) sums.add(xp + (n * l.C + c) * l.HW, l.HW);
    const double mean = sums.sum() / M;
    const double var = std::max(0.0, sums.sum_squares() / M - mean * mean);
    const double invstd = 1.0 / std::sqrt(var + double(eps));
    mean_out[c] = float(mean);
    invstd_out[c] = float(invstd);
    if (running_means) {
      const double unbiased = M > 1 ? var * M / (M - 1) : var;
      running_means[c] = float((1.0 - momentum) * double(running_means[c]) + momentum * mean);
      running_vars[c] = float((1.0 - momentum) * double(running_vars[c]) + momentum * unbiased);
    }
    const double scale = invstd * (weights ? weights[c] : 1.0);
    normalise_channel(l, c, xp, yp, float(mean), float(scale), biases ? biases[c] : 0.0f, epilogue);
  });
}

// y = (x - running_mean) / sqrt(running_var + eps) * weight + bias per channel, then the epilogue.
void forward_eval(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, float eps,
                  const Epilogue& epilogue) {
  const Layout l = layout_of(x);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* weights = data_or_null(weight);
  const float* biases = data_or_null(bias);
  const float* running_means = running_mean.data<float>();
  const float* running_vars = running_var.data<float>();
  for_each_channel(l, [&](int64_t c) {
    const double invstd = 1.0 / std::sqrt(double(running_vars[c]) + double(eps));
    const double scale = invstd * (weights ? weights[c] : 1.0);
    normalise_channel(l, c, xp, yp, running_means[c], float(scale), biases ? biases[c] : 0.0f, epilogue);
  });
}

// The gradient reaching the normalised value: dy, or with relu_output y given, g = dy where y > 0
// else 0 (relu's backward, computed on the fly).
struct GradIn {
  const float* dy;
  const float* relu_output;  // null: no ReLU
};
inline float relu_grad(float dy, float y) { return y > 0.0f ? dy : 0.0f; }

// Adds channel c's sum g and sum g*x to `sums`. With a ReLU, g is masked a chunk at a time into
// g_out (when given: dresidual, or dx, which the second pass overwrites) or a buffer on the stack,
// and summed by the same code as the unfused gradient: the chunk is a multiple of the 16-float
// vector step, so the sums are the unfused ones exactly.
void add_grad_sums(const Layout& l, int64_t c, const GradIn& g, const float* xp, float* g_out,
                   cpu::SumAndDot& sums) {
  constexpr int64_t kChunk = 1024;
  static_assert(kChunk % 16 == 0);
  float buffer[kChunk];
  for (int64_t n = 0; n < l.N; ++n) {
    const int64_t offset = (n * l.C + c) * l.HW;
    if (g.relu_output == nullptr) {
      sums.add(g.dy + offset, xp + offset, l.HW);
      continue;
    }
    for (int64_t begin = 0; begin < l.HW; begin += kChunk) {
      const int64_t count = std::min(kChunk, l.HW - begin);
      const float* dy = g.dy + offset + begin;
      const float* y = g.relu_output + offset + begin;
      float* masked = g_out ? g_out + offset + begin : buffer;
      for (int64_t i = 0; i < count; ++i) masked[i] = relu_grad(dy[i], y[i]);
      sums.add(masked, xp + offset + begin, count);
    }
  }
}

// Training-mode gradients, g the gradient reaching the normalised value (GradIn), xhat =
// (x - mean)*invstd, sums over n,h,w, M = N*H*W: dbias = sum g; dweight = sum g*xhat;
// dx = weight*invstd * (g - dbias/M - xhat*dweight/M); dresidual = g. Outputs may be undefined.
void backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dresidual,
              const GradIn& g, const Tensor& x, const Tensor& weight, const Tensor& save_mean,
              const Tensor& save_invstd) {
  const Layout l = layout_of(x);
  const float* xp = x.data<float>();
  float* dxp = mutable_data_or_null(dx);
  float* dresidual_p = mutable_data_or_null(dresidual);
  // Where the first pass writes the masked gradient g for the second to read back (one stream
  // instead of dy and y): dresidual, which is g, or else dx, which the second pass overwrites.
  float* g_out = g.relu_output == nullptr ? nullptr : dresidual_p ? dresidual_p : dxp;
  const float* weights = data_or_null(weight);
  const float* mean_in = save_mean.data<float>();
  const float* invstd_in = save_invstd.data<float>();
  float* dw = mutable_data_or_null(dweight);
  float* db = mutable_data_or_null(dbias);
  const double M = double(l.N * l.HW);
  for_each_channel(l, [&](int64_t c) {
    cpu::SumAndDot sums;
    add_grad_sums(l, c, g, xp, g_out, sums);
    const double sum_dy = sums.sum(), sum_dy_x = sums.dot();
    const double mean = mean_in[c], invstd = invstd_in[c];
    const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
    if (dw) dw[c] = float(sum_dy_xhat);
    if (db) db[c] = float(sum_dy);
    if (!dxp) return;
    // dx = a*g + b*(x - mean) + d with the per-channel constants below (x - mean first, so a
    // large mean does not cancel in float).
    const double k = invstd * (weights ? weights[c] : 1.0);
    const float a = float(k);
    const float b = float(-k * invstd * sum_dy_xhat / M);
    const float d = float(-k * sum_dy / M);
    const float mean32 = float(mean);
    // The planes go last first, as the first pass left them in cache (measured: 0.45 against
    // 0.37 ms on [128,64,8,8] in bench/conv_bench; the forward's second pass gains nothing so).
    const float* grad = g_out ? g_out : g.dy;
    for (int64_t n = l.N - 1; n >= 0; --n) {
      const int64_t offset = (n * l.C + c) * l.HW;
      const float* xs = xp + offset;
      const float* gs = grad + offset;
      float* out = dxp + offset;
      for (int64_t i = 0; i < l.HW; ++i) out[i] = a * gs[i] + b * (xs[i] - mean32) + d;
    }
  });
}

}  // namespace

void CpuBackend::batch_norm_fwd_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                                      const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                                      const Tensor& weight, const Tensor& bias, float momentum, float eps) {
  forward_train(y, save_mean, save_invstd, running_mean, running_var, x, weight, bias, momentum, eps, {});
}

void CpuBackend::batch_norm_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                     const Tensor& bias, const Tensor& running_mean,
                                     const Tensor& running_var, float eps) {
  forward_eval(y, x, weight, bias, running_mean, running_var, eps, {});
}

void CpuBackend::batch_norm_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                const Tensor& dy, const Tensor& x, const Tensor& weight,
                                const Tensor& save_mean, const Tensor& save_invstd) {
  backward(dx, dweight, dbias, Tensor(), GradIn{dy.data<float>(), nullptr}, x, weight, save_mean,
           save_invstd);
}

// Fused: y = max(0, (x - mean)*scale + bias + residual) in the normalising pass itself.
void CpuBackend::batch_norm_relu_fwd_train(const Tensor& y, const Tensor& save_mean,
                                           const Tensor& save_invstd, const Tensor& running_mean,
                                           const Tensor& running_var, const Tensor& x, const Tensor& weight,
                                           const Tensor& bias, const Tensor& residual, float momentum,
                                           float eps) {
  forward_train(y, save_mean, save_invstd, running_mean, running_var, x, weight, bias, momentum, eps,
                Epilogue{data_or_null(residual), true});
}

void CpuBackend::batch_norm_relu_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                          const Tensor& bias, const Tensor& residual,
                                          const Tensor& running_mean, const Tensor& running_var, float eps) {
  forward_eval(y, x, weight, bias, running_mean, running_var, eps, Epilogue{data_or_null(residual), true});
}

// Fused: relu's mask (y > 0) applied to dy in the backward's first pass; dresidual = masked dy.
void CpuBackend::batch_norm_relu_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                     const Tensor& dresidual, const Tensor& dy, const Tensor& y,
                                     const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                                     const Tensor& save_invstd) {
  backward(dx, dweight, dbias, dresidual, GradIn{dy.data<float>(), y.data<float>()}, x, weight, save_mean,
           save_invstd);
}

}  // namespace kindling
