// CPU pooling: every (n, c) plane is independent, so planes are spread over the thread pool and
// each backward writes only its own plane of dx (no races, no atomics).
#include "ops/cpu/cpu_backend.h"

#include "core/parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace kindling {
namespace {

// fn(plane) for every plane of N*C, in parallel; a grain of planes that keeps each task above a
// few thousand elements.
template <typename Fn>
void for_each_plane(const Pool2dParams& p, Fn&& fn) {
  const int64_t plane_work = std::max<int64_t>(1, p.H * p.W + p.P * p.Q);
  const int64_t grain = std::max<int64_t>(1, 16384 / plane_work);
  parallel_for(0, p.N * p.C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) fn(plane);
  });
}

// The window of output (oh, ow) clipped to the image, and its average-pool divisor.
struct Window {
  int64_t h0, h1, w0, w1;
  float divisor;
};
Window window_of(const Pool2dParams& p, int64_t oh, int64_t ow) {
  int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
  int64_t h1 = std::min(h0 + p.R, p.H + p.pad_h), w1 = std::min(w0 + p.S, p.W + p.pad_w);
  const int64_t padded_area = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, p.H), w1 = std::min(w1, p.W);
  const int64_t area = p.count_include_pad ? padded_area : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, float(std::max<int64_t>(area, 1))};
}

}  // namespace

// x [N,C,H,W] -> y, indices [N,C,P,Q]; y = max over the clipped window, indices = h*W + w of the
// first maximum in row-major order, or of the last NaN when the window holds any (PyTorch's rule:
// a NaN replaces the running maximum, so NaN propagates and the last one wins).
void CpuBackend::max_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& indices,
                                const Tensor& x) {
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  int64_t* ip = indices.data<int64_t>();
  for_each_plane(p, [&](int64_t plane) {
    const float* xs = xp + plane * p.H * p.W;
    float* ys = yp + plane * p.P * p.Q;
    int64_t* is = ip + plane * p.P * p.Q;
    for (int64_t oh = 0; oh < p.P; ++oh)
      for (int64_t ow = 0; ow < p.Q; ++ow) {
        const Window win = window_of(p, oh, ow);
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = win.h0 * p.W + win.w0;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) {
            const float v = xs[h * p.W + w];
            if (v > best || std::isnan(v)) {
              best = v;
              best_index = h * p.W + w;
            }
          }
        ys[oh * p.Q + ow] = best;
        is[oh * p.Q + ow] = best_index;
      }
  });
}

// dy, indices [N,C,P,Q] -> dx [N,C,H,W];  dx[n,c,i] = sum of dy[n,c,p,q] over outputs whose index is i
void CpuBackend::max_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy,
                                const Tensor& indices) {
  const float* dyp = dy.data<float>();
  const int64_t* ip = indices.data<int64_t>();
  float* dxp = dx.data<float>();
  for_each_plane(p, [&](int64_t plane) {
    float* dxs = dxp + plane * p.H * p.W;
    const float* dys = dyp + plane * p.P * p.Q;
    const int64_t* is = ip + plane * p.P * p.Q;
    std::memset(dxs, 0, size_t(p.H * p.W) * sizeof(float));
    for (int64_t i = 0; i < p.P * p.Q; ++i) dxs[is[i]] += dys[i];
  });
}

// x [N,C,H,W] -> y [N,C,P,Q];  y = sum over the clipped window / divisor (see window_of)
void CpuBackend::avg_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& x) {
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for_each_plane(p, [&](int64_t plane) {
    const float* xs = xp + plane * p.H * p.W;
    float* ys = yp + plane * p.P * p.Q;
    for (int64_t oh = 0; oh < p.P; ++oh)
      for (int64_t ow = 0; ow < p.Q; ++ow) {
        const Window win = window_of(p, oh, ow);
        float sum = 0.0f;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) sum += xs[h * p.W + w];
        ys[oh * p.Q + ow] = sum / win.divisor;
      }
  });
}

// dy [N,C,P,Q] -> dx [N,C,H,W];  dx[n,c,h,w] = sum over windows containing (h,w) of dy / divisor
void CpuBackend::avg_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy) {
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  for_each_plane(p, [&](int64_t plane) {
    float* dxs = dxp + plane * p.H * p.W;
    const float* dys = dyp + plane * p.P * p.Q;
    std::memset(dxs, 0, size_t(p.H * p.W) * sizeof(float));
    for (int64_t oh = 0; oh < p.P; ++oh)
      for (int64_t ow = 0; ow < p.Q; ++ow) {
        const Window win = window_of(p, oh, ow);
        const float g = dys[oh * p.Q + ow] / win.divisor;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) dxs[h * p.W + w] += g;
      }
  });
}

}  // namespace kindling
