// CPU batch norm. Channels are independent, so they are spread over the thread pool; a channel's
// values are N planes of H*W contiguous floats. Statistics accumulate in double (lane_sums.h), and
// every pass over the data is a per-channel map ((x - mean)*scale + bias, or a*dy + b*(x - mean) + d)
// that vectorises. Both subtract the mean first, so a large mean does not cancel in float.
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

// out = (in - mean)*scale + bias over channel c's planes.
void normalise_channel(const Layout& l, int64_t c, const float* in, float* out, float mean, float scale,
                       float bias) {
  for (int64_t n = 0; n < l.N; ++n) {
    const float* src = in + (n * l.C + c) * l.HW;
    float* dst = out + (n * l.C + c) * l.HW;
    for (int64_t i = 0; i < l.HW; ++i) dst[i] = (src[i] - mean) * scale + bias;
  }
}

const float* data_or_null(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

}  // namespace

// x, y [N,C,H,W]; weight, bias, save_mean, save_invstd, running_mean, running_var [C]; M = N*H*W:
// mean = sum x / M, var = sum x² / M - mean²; y = (x - mean) * invstd * weight + bias with
// invstd = 1/sqrt(var + eps); running_mean += momentum*(mean - running_mean),
// running_var += momentum*(var*M/(M-1) - running_var).
void CpuBackend::batch_norm_fwd_train(const Tensor& y, const Tensor& save_mean,
                                      const Tensor& save_invstd, const Tensor& running_mean,
                                      const Tensor& running_var, const Tensor& x, const Tensor& weight,
                                      const Tensor& bias, float momentum, float eps) {
  const Layout l = layout_of(x);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const float* weights = data_or_null(weight);
  const float* biases = data_or_null(bias);
  float* mean_out = save_mean.data<float>();
  float* invstd_out = save_invstd.data<float>();
  float* running_means = running_mean.defined() ? running_mean.data<float>() : nullptr;
  float* running_vars = running_var.defined() ? running_var.data<float>() : nullptr;
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
    normalise_channel(l, c, xp, yp, float(mean), float(scale), biases ? biases[c] : 0.0f);
  });
}

// y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, per channel.
void CpuBackend::batch_norm_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                     const Tensor& bias, const Tensor& running_mean,
                                     const Tensor& running_var, float eps) {
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
    normalise_channel(l, c, xp, yp, running_means[c], float(scale), biases ? biases[c] : 0.0f);
  });
}

// Training-mode gradients, xhat = (x - mean)*invstd, sums over n,h,w, M = N*H*W:
// dbias = sum dy; dweight = sum dy*xhat;
// dx = weight*invstd * (dy - dbias/M - xhat*dweight/M)   (dweight, dbias may be undefined).
void CpuBackend::batch_norm_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                const Tensor& dy, const Tensor& x, const Tensor& weight,
                                const Tensor& save_mean, const Tensor& save_invstd) {
  const Layout l = layout_of(x);
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dxp = dx.defined() ? dx.data<float>() : nullptr;
  const float* weights = data_or_null(weight);
  const float* mean_in = save_mean.data<float>();
  const float* invstd_in = save_invstd.data<float>();
  float* dw = dweight.defined() ? dweight.data<float>() : nullptr;
  float* db = dbias.defined() ? dbias.data<float>() : nullptr;
  const double M = double(l.N * l.HW);
  for_each_channel(l, [&](int64_t c) {
    cpu::SumAndDot sums;
    for (int64_t n = 0; n < l.N; ++n) sums.add(dyp + (n * l.C + c) * l.HW, xp + (n * l.C + c) * l.HW, l.HW);
    const double sum_dy = sums.sum(), sum_dy_x = sums.dot();
    const double mean = mean_in[c], invstd = invstd_in[c];
    const double sum_dy_xhat = (sum_dy_x - mean * sum_dy) * invstd;
    if (dw) dw[c] = float(sum_dy_xhat);
    if (db) db[c] = float(sum_dy);
    if (!dxp) return;
    // dx = a*dy + b*(x - mean) + d with the per-channel constants below (x - mean first, so a
    // large mean does not cancel in float).
    const double k = invstd * (weights ? weights[c] : 1.0);
    const float a = float(k);
    const float b = float(-k * invstd * sum_dy_xhat / M);
    const float d = float(-k * sum_dy / M);
    const float mean32 = float(mean);
    for (int64_t n = 0; n < l.N; ++n) {
      const int64_t offset = (n * l.C + c) * l.HW;
      const float* g = dyp + offset;
      const float* xs = xp + offset;
      float* out = dxp + offset;
      for (int64_t i = 0; i < l.HW; ++i) out[i] = a * g[i] + b * (xs[i] - mean32) + d;
    }
  });
}

}  // namespace kindling
