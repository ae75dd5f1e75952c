// im2col / col2im. For each tap (c, r, s) the output rows and columns whose input pixel lies inside
// the image form one rectangle [p_lo,p_hi) x [q_lo,q_hi), computed once per tap, so the inner loops
// carry no bounds checks.
// Planes of at most 64 pixels (ResNet-18's 4x4 and 8x8 stages at 32x32 input) have rows of a few
// floats, where those loops spend more time on loop control than on copying (im2col was 7% of a
// ResNet-18 step). With AVX-512 such a plane sits in four registers and each tap's 16 outputs are
// a lane permutation of them (permutex2var over two register pairs, blended), zeroed outside the
// image by a mask; the permutation indices are computed once per call for all channels.
#include "ops/cpu/im2col.h"

#include "ops/cpu/valid_range.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace kindling::cpu {
namespace {

void zero(float* p, int64_t n) {
  if (n > 0) std::memset(p, 0, size_t(n) * sizeof(float));
}

#if defined(__AVX512F__)
constexpr int64_t kSmallPlane = 64;  // pixels: four 16-float registers

// Where the 16 outputs j0..j0+15 of one tap come from: plane pixel index[i] (bit 5 picks the
// register pair), or zero where `inside` is clear.
struct TapLanes {
  __m512i index;
  __mmask16 inside, upper_pair;
};

void im2col_small_plane(const Conv2dParams& p, int64_t C, const float* x, float* col, int64_t ld) {
  const int64_t HW = p.H * p.W, PQ = p.P * p.Q, RS = p.R * p.S, vectors = (PQ + 15) / 16;
  std::vector<TapLanes> lanes(size_t(RS * vectors));
  for (int64_t rs = 0; rs < RS; ++rs)
    for (int64_t v = 0; v < vectors; ++v) {
      alignas(64) int32_t index[16] = {};
      __mmask16 inside = 0;
      for (int64_t i = 0; i < 16 && v * 16 + i < PQ; ++i) {
        const int64_t j = v * 16 + i, oh = j / p.Q, ow = j % p.Q;
        const int64_t h = oh * p.stride_h - p.pad_h + rs / p.S * p.dil_h;
        const int64_t w = ow * p.stride_w - p.pad_w + rs % p.S * p.dil_w;
        if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
        index[i] = int32_t(h * p.W + w);
        inside = __mmask16(inside | (1u << i));
      }
      const __m512i idx = _mm512_load_si512(index);
      lanes[size_t(rs * vectors + v)] = {idx, inside, _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32))};
    }
  auto part = [&](int64_t v) {  // load mask of the plane's register v
    const int64_t left = HW - 16 * v;
    return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1u);
  };
  const __mmask16 m0 = part(0), m1 = part(1), m2 = part(2), m3 = part(3);
  const __mmask16 last = __mmask16(PQ % 16 == 0 ? 0xFFFF : (1u << (PQ % 16)) - 1u);
  for (int64_t c = 0; c < C; ++c) {
    const float* plane = x + c * HW;
    const __m512 x0 = _mm512_maskz_loadu_ps(m0, plane), x1 = _mm512_maskz_loadu_ps(m1, plane + 16);
    const __m512 x2 = _mm512_maskz_loadu_ps(m2, plane + 32), x3 = _mm512_maskz_loadu_ps(m3, plane + 48);
    for (int64_t rs = 0; rs < RS; ++rs) {
      float* row = col + (c * RS + rs) * ld;
      for (int64_t v = 0; v < vectors; ++v) {
        const TapLanes& t = lanes[size_t(rs * vectors + v)];
        __m512 out = _mm512_permutex2var_ps(x0, t.index, x1);
        if (HW > 32) out = _mm512_mask_blend_ps(t.upper_pair, out, _mm512_permutex2var_ps(x2, t.index, x3));
        _mm512_mask_storeu_ps(row + 16 * v, v == vectors - 1 ? last : __mmask16(0xFFFF),
                              _mm512_maskz_mov_ps(t.inside, out));
      }
    }
  }
}
#endif

}  // namespace

void im2col(const Conv2dParams& p, int64_t C, const float* x, float* col, int64_t ld) {
#if defined(__AVX512F__)
  if (p.H * p.W <= kSmallPlane) return im2col_small_plane(p, C, x, col, ld);
#endif
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
          const float* src = xc + (oh * sh + off_h) * p.W;  // the input row; column ow*sw + off_w
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
          float* dst = dxc + (oh * sh + off_h) * p.W;  // the input row; column ow*sw + off_w
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
