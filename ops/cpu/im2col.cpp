// im2col / col2im. For each tap (c, r, s) the output rows and columns whose input pixel lies inside
// the image form one rectangle [p_lo,p_hi) x [q_lo,q_hi), computed once per tap, so the inner loops
// carry no bounds checks.
#include "ops/cpu/im2col.h"

#include <algorithm>
#include <cstring>

namespace kindling::cpu {
namespace {

// Output indices i in [0, out) whose input position i*stride + offset lies in [0, extent).
struct ValidRange {
  int64_t lo, hi;
};
ValidRange valid_range(int64_t out, int64_t stride, int64_t offset, int64_t extent) {
  int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t hi = extent - offset <= 0 ? 0 : (extent - offset + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

void zero(float* p, int64_t n) {
  if (n > 0) std::memset(p, 0, size_t(n) * sizeof(float));
}

}  // namespace

void im2col(const Conv2dParams& p, int64_t C, const float* x, float* col, int64_t ld) {
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * p.H * p.W;
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t off_h = r * p.dil_h - p.pad_h;
      const ValidRange rows = valid_range(p.P, sh, off_h, p.H);
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t off_w = s * p.dil_w - p.pad_w;
        const ValidRange cols = valid_range(p.Q, sw, off_w, p.W);
        float* row = col + ((c * p.R + r) * p.S + s) * ld;
        // Plain loops rather than memcpy/memset calls: rows of small planes are a few floats.
        for (int64_t i = 0; i < rows.lo * p.Q; ++i) row[i] = 0.0f;
        for (int64_t oh = rows.lo; oh < rows.hi; ++oh) {
          const float* src = xc + (oh * sh + off_h) * p.W;   // the input row; column ow*sw + off_w
          float* dst = row + oh * p.Q;
          for (int64_t ow = 0; ow < cols.lo; ++ow) dst[ow] = 0.0f;
          for (int64_t ow = cols.lo; ow < cols.hi; ++ow) dst[ow] = src[ow * sw + off_w];
          for (int64_t ow = cols.hi; ow < p.Q; ++ow) dst[ow] = 0.0f;
        }
        for (int64_t i = rows.hi * p.Q; i < p.P * p.Q; ++i) row[i] = 0.0f;
      }
    }
  }
}

void col2im(const Conv2dParams& p, int64_t C, const float* col, int64_t ld, float* dx) {
  const int64_t sh = p.stride_h, sw = p.stride_w;
  zero(dx, C * p.H * p.W);
  for (int64_t c = 0; c < C; ++c) {
    float* dxc = dx + c * p.H * p.W;
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t off_h = r * p.dil_h - p.pad_h;
      const ValidRange rows = valid_range(p.P, sh, off_h, p.H);
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t off_w = s * p.dil_w - p.pad_w;
        const ValidRange cols = valid_range(p.Q, sw, off_w, p.W);
        const float* row = col + ((c * p.R + r) * p.S + s) * ld;
        for (int64_t oh = rows.lo; oh < rows.hi; ++oh) {
          float* dst = dxc + (oh * sh + off_h) * p.W;   // the input row; column ow*sw + off_w
          const float* src = row + oh * p.Q;
          if (sw == 1) {
            float* d = dst + cols.lo + off_w;
            const float* g = src + cols.lo;
            for (int64_t i = 0; i < cols.hi - cols.lo; ++i) d[i] += g[i];
          } else {
            for (int64_t ow = cols.lo; ow < cols.hi; ++ow) dst[ow * sw + off_w] += src[ow];
          }
        }
      }
    }
  }
}

}  // namespace kindling::cpu
