// Reference pooling: each output visits its window tap by tap.
#include "ops/cpu/reference/reference_backend.h"

#include <cmath>
#include <limits>

namespace kindling {
namespace {

// tap(h, w, in_image) for each tap (r, s) of output (oh, ow)'s R×S window, h = oh*sh - ph + r,
// w = ow*sw - pw + s, that lies inside the zero-padded image; in_image says whether it is a pixel.
template <typename Tap>
void for_each_tap(const Pool2dParams& p, int64_t oh, int64_t ow, Tap&& tap) {
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t s = 0; s < p.S; ++s) {
      const int64_t h = oh * p.stride_h - p.pad_h + r, w = ow * p.stride_w - p.pad_w + s;
      if (h >= p.H + p.pad_h || w >= p.W + p.pad_w) continue;
      tap(h, w, h >= 0 && h < p.H && w >= 0 && w < p.W);
    }
}

// The average's divisor: the taps inside the padded image, or only the pixels.
double divisor(const Pool2dParams& p, int64_t oh, int64_t ow) {
  int64_t count = 0;
  for_each_tap(p, oh, ow, [&](int64_t, int64_t, bool in_image) { count += p.count_include_pad || in_image; });
  return double(count > 0 ? count : 1);
}

}  // namespace

// x [N,C,H,W] -> y, indices [N,C,P,Q]: y = the window's maximum over its pixels, indices = h*W + w
// of the first maximum in row-major order; a NaN replaces the running maximum, so NaN propagates and
// a window with several takes its last (PyTorch's rule).
void ReferenceCpuBackend::max_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& indices,
                                         const Tensor& x) {
  for (int64_t plane = 0; plane < p.N * p.C; ++plane) {
    const float* xs = x.data<float>() + plane * p.H * p.W;
    for (int64_t oh = 0; oh < p.P; ++oh)
      for (int64_t ow = 0; ow < p.Q; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = -1;
        for_each_tap(p, oh, ow, [&](int64_t h, int64_t w, bool in_image) {
          if (!in_image) return;
          const float v = xs[h * p.W + w];
          if (best_index < 0 || v > best || std::isnan(v)) best = v, best_index = h * p.W + w;
        });
        y.data<float>()[(plane * p.P + oh) * p.Q + ow] = best;
        indices.data<int64_t>()[(plane * p.P + oh) * p.Q + ow] = best_index;
      }
  }
}

// dy, indices [N,C,P,Q] -> dx [N,C,H,W]: each output's gradient goes to the pixel it took.
void ReferenceCpuBackend::max_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy,
                                         const Tensor& indices) {
  float* dxp = dx.data<float>();
  for (int64_t i = 0; i < dx.numel(); ++i) dxp[i] = 0.0f;
  for (int64_t i = 0; i < dy.numel(); ++i) {
    const int64_t plane = i / (p.P * p.Q);
    dxp[plane * p.H * p.W + indices.data<int64_t>()[i]] += dy.data<float>()[i];
  }
}

// x [N,C,H,W] -> y [N,C,P,Q]: y = sum of the window's pixels / divisor (the padding counts as zeros).
void ReferenceCpuBackend::avg_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& x) {
  for (int64_t plane = 0; plane < p.N * p.C; ++plane) {
    const float* xs = x.data<float>() + plane * p.H * p.W;
    for (int64_t oh = 0; oh < p.P; ++oh)
      for (int64_t ow = 0; ow < p.Q; ++ow) {
        double sum = 0;
        for_each_tap(p, oh, ow,
                     [&](int64_t h, int64_t w, bool in_image) { sum += in_image ? xs[h * p.W + w] : 0.0f; });
        y.data<float>()[(plane * p.P + oh) * p.Q + ow] = float(sum / divisor(p, oh, ow));
      }
  }
}

// dy [N,C,P,Q] -> dx [N,C,H,W]: every pixel of a window receives dy / divisor.
void ReferenceCpuBackend::avg_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy) {
  float* dxp = dx.data<float>();
  for (int64_t i = 0; i < dx.numel(); ++i) dxp[i] = 0.0f;
  for (int64_t plane = 0; plane < p.N * p.C; ++plane)
    for (int64_t oh = 0; oh < p.P; ++oh)
      for (int64_t ow = 0; ow < p.Q; ++ow) {
        const double g = dy.data<float>()[(plane * p.P + oh) * p.Q + ow] / divisor(p, oh, ow);
        for_each_tap(p, oh, ow, [&](int64_t h, int64_t w, bool in_image) {
          if (in_image) dxp[plane * p.H * p.W + h * p.W + w] += float(g);
        });
      }
}

}  // namespace kindling
