// Reference convolution: the definition, one multiply-add per (output pixel, tap), summed in double.
#include "ops/cpu/reference/reference_backend.h"

#include <vector>

namespace kindling {
namespace {

// Every term of the convolution sum: term(y_index, x_index, w_index) for each output element
// y[n,k,p,q], input channel c of k's group (Cg = C/groups per group, Kg = K/groups) and tap (r, s)
// whose input pixel h = p*stride_h - pad_h + r*dil_h, w = q*stride_w - pad_w + s*dil_w lies inside
// the image (outside it the zero padding adds nothing).
template <typename Term>
void for_each_conv_term(const Conv2dParams& p, Term&& term) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t oh = 0; oh < p.P; ++oh)
        for (int64_t ow = 0; ow < p.Q; ++ow)
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t ih = oh * p.stride_h - p.pad_h + r * p.dil_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + s * p.dil_w;
                if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
                const int64_t input_channel = k / Kg * Cg + c;
                term(((n * p.K + k) * p.P + oh) * p.Q + ow, ((n * p.C + input_channel) * p.H + ih) * p.W + iw,
                     ((k * Cg + c) * p.R + r) * p.S + s);
              }
}

void store(const std::vector<double>& sums, const Tensor& out) {
  float* dst = out.data<float>();
  for (size_t i = 0; i < sums.size(); ++i) dst[i] = float(sums[i]);
}

}  // namespace

// x [N,C,H,W], w [K,C/groups,R,S], bias [K] (may be undefined) -> y [N,K,P,Q]:
//   y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*Cg + c, p*sh - ph + r*dh, q*sw - pw + s*dw] * w[k,c,r,s]
void ReferenceCpuBackend::conv2d_fwd(const Conv2dParams& p, const Tensor& y, const Tensor& x, const Tensor& w,
                                     const Tensor& bias) {
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  std::vector<double> sums(size_t(y.numel()));
  if (bias.defined())
    for (size_t i = 0; i < sums.size(); ++i) sums[i] = bias.data<float>()[int64_t(i) / (p.P * p.Q) % p.K];
  for_each_conv_term(p, [&](int64_t yi, int64_t xi, int64_t wi) { sums[yi] += double(xp[xi]) * wp[wi]; });
  store(sums, y);
}

// dy [N,K,P,Q], w -> dx [N,C,H,W]: each term of the forward sum sends dy * w back to its input pixel.
void ReferenceCpuBackend::conv2d_bwd_data(const Conv2dParams& p, const Tensor& dx, const Tensor& dy,
                                          const Tensor& w) {
  const float* dyp = dy.data<float>();
  const float* wp = w.data<float>();
  std::vector<double> sums(size_t(dx.numel()));
  for_each_conv_term(p, [&](int64_t yi, int64_t xi, int64_t wi) { sums[xi] += double(dyp[yi]) * wp[wi]; });
  store(sums, dx);
}

// x, dy -> dw [K,C/groups,R,S] = sum over the terms using each weight of dy * x;
// dbias [K] (may be undefined) = sum_{n,p,q} dy[n,k,p,q].
void ReferenceCpuBackend::conv2d_bwd_weight(const Conv2dParams& p, const Tensor& dw, const Tensor& dbias,
                                            const Tensor& x, const Tensor& dy) {
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  std::vector<double> sums(size_t(dw.numel()));
  for_each_conv_term(p, [&](int64_t yi, int64_t xi, int64_t wi) { sums[wi] += double(dyp[yi]) * xp[xi]; });
  store(sums, dw);
  if (!dbias.defined()) return;
  std::vector<double> bias_sums(size_t(p.K));
  for (int64_t i = 0; i < dy.numel(); ++i) bias_sums[size_t(i / (p.P * p.Q) % p.K)] += dyp[i];
  store(bias_sums, dbias);
}

}  // namespace kindling
