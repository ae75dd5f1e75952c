// CPU batch norm, alone and fused with a residual add and a ReLU. Channels are independent, so
// blocks of them are spread over the thread pool. A channel's values are N planes of H*W
// contiguous floats, and the planes of one image's consecutive channels lie end to end, so a
// block of channels reads runs of at least 4 KB (one channel of 32×32 planes, 16 of 8×8 ones):
// a single channel's 256-byte planes, each in a different page, left the hardware prefetchers
// nothing to follow (the fused backward on a cold [128,64,8,8] took 0.70–1.01 ms a channel at
// a time, 0.34–0.54 in blocks: bench/conv_bench's cold column, 2026-12-07, Intel m207). A
// block's second pass still finds most of what the first read in L2, and each channel sums its
// planes in image order as before, so the results do not depend on the blocking. Statistics
// accumulate in double (lane_sums.h), and every pass over the data is a per-channel map
// ((x - mean)*scale + bias, or a*dy + b*(x - mean) + d) that vectorises. Both subtract the mean
// first, so a large mean does not cancel in float. The fused forms do the residual add and the
// ReLU inside the normalising pass, and the ReLU's mask inside the backward's first pass, which
// stores the masked gradient for the second, with the unfused arithmetic: their results equal
// the composition's.
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

// Channels per block: whole planes adding up to kRunFloats contiguous floats per image, at most
// kMaxBlock channels (the per-channel sums of a block live on the stack).
constexpr int64_t kRunFloats = 1024;
constexpr int64_t kMaxBlock = 16;
int64_t block_channels(const Layout& l) {
  return std::clamp<int64_t>(kRunFloats / std::max<int64_t>(1, l.HW), 1, kMaxBlock);
}

// fn(c0, c1) for consecutive blocks of channels, in parallel when the tensor is big enough to pay
// for it.
template <typename Fn>
void for_each_block(const Layout& l, Fn&& fn) {
  const int64_t block = block_channels(l);
  const int64_t blocks = (l.C + block - 1) / block;
  const int64_t per_block = std::max<int64_t>(1, l.N * l.HW * block);
  const int64_t grain = std::max<int64_t>(1, 32768 / per_block);
  parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) fn(b * block, std::min(l.C, (b + 1) * block));
  });
}

// What follows the normalising map: an optional residual (laid out like x) added, then an optional ReLU.
struct Epilogue {
  const float* residual = nullptr;
  bool relu = false;
};

// Per-channel constants of the normalising map.
struct ChannelMap {
  float mean, scale, bias;
};

// out = (in - mean)*scale + bias over channels [c0, c1) of every image, then the epilogue:
// + residual, max(0, .) as relu() computes it (x > 0 ? x : 0, so NaN becomes 0). Without an
// epilogue it is batch_norm's map. maps[c - c0] holds channel c's constants.
template <bool kResidual, bool kRelu>
void normalise_block(const Layout& l, int64_t c0, int64_t c1, const float* in, float* out,
                     const ChannelMap* maps, const float* residual) {
  for (int64_t n = 0; n < l.N; ++n)
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t offset = (n * l.C + c) * l.HW;
      const float* src = in + offset;
      float* dst = out + offset;
      const auto [mean, scale, bias] = maps[c - c0];
      for (int64_t i = 0; i < l.HW; ++i) {
        float v = (src[i] - mean) * scale + bias;
        if constexpr (kResidual) v = v + residual[offset + i];
        if constexpr (kRelu) v = v > 0.0f ? v : 0.0f;
        dst[i] = v;
      }
    }
}

void normalise_block(const Layout& l, int64_t c0, int64_t c1, const float* in, float* out,
                     const ChannelMap* maps, const Epilogue& epilogue) {
  const bool residual = epilogue.residual != nullptr;
  if (residual && epilogue.relu)
    normalise_block<true, true>(l, c0, c1, in, out, maps, epilogue.residual);
  else if (residual)
    normalise_block<true, false>(l, c0, c1, in, out, maps, epilogue.residual);
  else if (epilogue.relu)
    normalise_block<false, true>(l, c0, c1, in, out, maps, nullptr);
  else
    normalise_block<false, false>(l, c0, c1, in, out, maps, nullptr);
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
  for_each_block(l, [&](int64_t c0, int64_t c1) {
    cpu::MomentSums sums[kMaxBlock];
    for (int64_t n = 0; n < l.N; ++n)
      for (int64_t c = c0; c < c1; ++c) sums[c - c0].add(xp + (n * l.C + c) * l.HW, l.HW);
    ChannelMap maps[kMaxBlock];
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = sums[c - c0].sum() / M;
      const double var = std::max(0.0, sums[c - c0].sum_squares() / M - mean * mean);
      const double invstd = 1.0 / std::sqrt(var + double(eps));
      mean_out[c] = float(mean);
      invstd_out[c] = float(invstd);
      if (running_means) {
        const double unbiased = M > 1 ? var * M / (M - 1) : var;
        running_means[c] = float((1.0 - momentum) * double(running_means[c]) + momentum * mean);
        running_vars[c] = float((1.0 - momentum) * double(running_vars[c]) + momentum * unbiased);
      }
      const double scale = invstd * (weights ? weights[c] : 1.0);
      maps[c - c0] = {float(mean), float(scale), biases ? biases[c] : 0.0f};
    }
    normalise_block(l, c0, c1, xp, yp, maps, epilogue);
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
  for_each_block(l, [&](int64_t c0, int64_t c1) {
    ChannelMap maps[kMaxBlock];
    for (int64_t c = c0; c < c1; ++c) {
      const double invstd = 1.0 / std::sqrt(double(running_vars[c]) + double(eps));
      const double scale = invstd * (weights ? weights[c] : 1.0);
      maps[c - c0] = {running_means[c], float(scale), biases ? biases[c] : 0.0f};
    }
    normalise_block(l, c0, c1, xp, yp, maps, epilogue);
  });
}

// The gradient reaching the normalised value: dy, or with relu_output y given, g = dy where y > 0
// else 0 (relu's backward, computed on the fly).
struct GradIn {
  const float* dy;
  const float* relu_output;  // null: no ReLU
};
inline float relu_grad(float dy, float y) { return y > 0.0f ? dy : 0.0f; }

// Adds the sum of g and of g*x over plane `offset` (HW floats) to `sums`. With a ReLU, g is masked
// a chunk at a time into g_out (when given: dresidual, or dx, which the second pass overwrites)
// or a buffer on the stack, and summed by the same code as the unfused gradient: the chunk is a
// multiple of the sums' vector step (lane_sums.h), so the sums are the unfused ones exactly.
void add_grad_sums(const Layout& l, int64_t offset, const GradIn& g, const float* xp, float* g_out,
                   cpu::SumAndDot& sums) {
  if (g.relu_output == nullptr) {
    sums.add(g.dy + offset, xp + offset, l.HW);
    return;
  }
  constexpr int64_t kChunk = 1024;
  static_assert(kChunk % cpu::kStepFloats == 0);
  float buffer[kChunk];
  for (int64_t begin = 0; begin < l.HW; begin += kChunk) {
    const int64_t count = std::min(kChunk, l.HW - begin);
    const float* dy = g.dy + offset + begin;
    const float* y = g.relu_output + offset + begin;
    float* masked = g_out ? g_out + offset + begin : buffer;
    for (int64_t i = 0; i < count; ++i) masked[i] = relu_grad(dy[i], y[i]);
    sums.add(masked, xp + offset + begin, count);
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
  for_each_block(l, [&](int64_t c0, int64_t c1) {
    cpu::SumAndDot sums[kMaxBlock];
    for (int64_t n = 0; n < l.N; ++n)
      for (int64_t c = c0; c < c1; ++c) add_grad_sums(l, (n * l.C + c) * l.HW, g, xp, g_out, sums[c - c0]);
    // dx = a*g + b*(x - mean) + d with the per-channel constants below (x - mean first, so a
    // large mean does not cancel in float).
    struct DxMap {
      float a, b, d, mean;
    } maps[kMaxBlock];
    for (int64_t c = c0; c < c1; ++c) {
      const double sum_dy = sums[c - c0].sum(), sum_dy_x = sums[c - c0].dot();
      const double mean = mean_in[c], invstd = invstd_in[c];
      const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
      if (dw) dw[c] = float(sum_dy_xhat);
      if (db) db[c] = float(sum_dy);
      const double k = invstd * (weights ? weights[c] : 1.0);
      maps[c - c0] = {float(k), float(-k * invstd * sum_dy_xhat / M), float(-k * sum_dy / M), float(mean)};
    }
    if (!dxp) return;
    // The images go last first, as the first pass left them in cache (measured: 0.45 against
    // 0.37 ms on [128,64,8,8] in bench/conv_bench; the forward's second pass gains nothing so).
    const float* grad = g_out ? g_out : g.dy;
    for (int64_t n = l.N - 1; n >= 0; --n)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t offset = (n * l.C + c) * l.HW;
        const float* xs = xp + offset;
        const float* gs = grad + offset;
        float* out = dxp + offset;
        const auto [a, b, d, mean32] = maps[c - c0];
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
