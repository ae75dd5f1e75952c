// The tile transforms of Winograd's F(2×2, 3×3) (see winograd_transforms.h), with
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 -1 -1].
// The tiles' transforms (input, output, output gradient) hold one tile per vector lane and run
// over an image's tiles as flat loops where the tile geometry allows it, so an 8×8 plane's 16
// tiles fill an AVX-512 vector instead of four of its lanes; the weights' hold one input channel
// per lane.
#include "ops/cpu/winograd_transforms.h"

#include "ops/cpu/conv_lowering.h"
#include "ops/cpu/simd.h"
#include "ops/cpu/transpose.h"

#include "core/parallel.h"

#include <algorithm>

namespace kindling::cpu::winograd {
namespace {

// A row of tiles is processed kStep tiles at a time: one vector register each (simd.h), or one
// float on a machine with neither AVX-512 nor AVX2.
#ifdef KINDLING_SIMD
using simd::Vec;
constexpr int64_t kStep = simd::kLanes;
inline Vec broadcast(float x) { return simd::broadcast(x); }
inline Vec load(const float* p) { return simd::load(p); }
inline void store(float* p, Vec v, int64_t n) { simd::store_first(p, v, n); }
inline Vec add(Vec a, Vec b) { return simd::add(a, b); }
inline Vec sub(Vec a, Vec b) { return simd::sub(a, b); }
inline Vec mul(Vec a, Vec b) { return simd::mul(a, b); }
// xp[v .. v+kStep) of a row zero-padded by pad on the left, row [W] holding the pixels.
inline Vec load_padded(const float* row, int64_t v, int64_t pad, int64_t W) {
  const int64_t first = pad - v, end = W + pad - v;  // lanes holding pixels
  if (first <= 0 && end >= kStep) return simd::load(row + v - pad);
  return simd::load(row + v - pad, simd::lanes_between(first, end));
}
inline void deinterleave(Vec a, Vec b, Vec& even, Vec& odd) { simd::deinterleave(a, b, even, odd); }
inline void interleave(Vec a, Vec b, Vec& lo, Vec& hi) { simd::interleave(a, b, lo, hi); }
#else
using Vec = float;
constexpr int64_t kStep = 1;
inline Vec broadcast(float x) { return x; }
inline Vec load(const float* p) { return *p; }
inline void store(float* p, Vec v, int64_t) { *p = v; }
inline Vec add(Vec a, Vec b) { return a + b; }
inline Vec sub(Vec a, Vec b) { return a - b; }
inline Vec mul(Vec a, Vec b) { return a * b; }
inline Vec load_padded(const float* row, int64_t v, int64_t pad, int64_t W) {
  return v >= pad && v < W + pad ? row[v - pad] : 0.0f;
}
inline void deinterleave(Vec a, Vec b, Vec& even, Vec& odd) { even = a, odd = b; }
inline void interleave(Vec a, Vec b, Vec& lo, Vec& hi) { lo = a, hi = b; }
#endif

}  // namespace

Geometry geometry(const Conv2dParams& p) {
  Geometry g;
  g.tiles_h = (p.P + 1) / 2, g.tiles_w = (p.Q + 1) / 2;
  g.per_image = g.tiles_h * g.tiles_w;
  g.rows = 2 * g.tiles_h + 2;
  return g;
}

int64_t plane_floats(int64_t rows, int64_t ld) { return (rows * ld + 1023) / 1024 * 1024 + 16; }

// Per output channel k the C filters are transposed to taps [9][C], so that the transform runs along
// c with whole vectors and writes each u[ξ][k] row in order.
std::vector<PackedA> transform_weights(const Conv2dParams& p, const float* w, bool flipped) {
  const int64_t K = p.K, C = p.C, row = (C + kStep - 1) / kStep * kStep;
  const Workspace u_buffer(1, kPositions * K * C);
  float* u = u_buffer.slice(0);
  parallel_for(0, K, std::max<int64_t>(1, 2048 / C), [&](int64_t k0, int64_t k1) {
    std::vector<float> taps(size_t(9 * row));  // taps[rs*row + c] = w'[k, c, r, s]
    const Vec half = broadcast(0.5f);
    for (int64_t k = k0; k < k1; ++k) {
      if (flipped) {  // w'[k, c, r, s] = w[c, k, 2-r, 2-s]: tap rs is w's tap 8-rs
        transpose(w + k * 9, C, 9, K * 9, taps.data(), row);
        for (int64_t rs = 0; rs < 4; ++rs)
          std::swap_ranges(taps.begin() + rs * row, taps.begin() + (rs + 1) * row,
                           taps.begin() + (8 - rs) * row);
      } else {
        transpose(w + k * C * 9, C, 9, 9, taps.data(), row);
      }
      for (int64_t c = 0; c < C; c += kStep) {
        const int64_t n = std::min(kStep, C - c);
        Vec gg[4][3];  // G g
        for (int s = 0; s < 3; ++s) {
          const Vec g0 = load(taps.data() + s * row + c), g1 = load(taps.data() + (3 + s) * row + c);
          const Vec g2 = load(taps.data() + (6 + s) * row + c);
          gg[0][s] = g0, gg[1][s] = mul(half, add(add(g0, g1), g2)),
          gg[2][s] = mul(half, add(sub(g0, g1), g2));
          gg[3][s] = g2;
        }
        for (int i = 0; i < 4; ++i) {  // (G g) Gᵀ, row i
          const Vec* r = gg[i];
          const Vec out[4] = {r[0], mul(half, add(add(r[0], r[1]), r[2])),
                              mul(half, add(sub(r[0], r[1]), r[2])), r[2]};
          for (int j = 0; j < 4; ++j) store(u + ((i * 4 + j) * K + k) * C + c, out[j], n);
        }
      }
    }
  });
  std::vector<PackedA> packed;
  packed.reserve(kPositions);
  for (int64_t xi = 0; xi < kPositions; ++xi) packed.emplace_back(u + xi * K * C, K, C, C, 1);
  return packed;
}

namespace {

// transform_input's scratch h: the horizontal transforms d B of one channel's padded rows,
// h[j][u % 2][u / 2][tx] for column j of tile tx in padded row u, each (j, parity) array of
// (TH + 1) * TW floats plus a vector of slack. Split by row parity, the four rows 2ty..2ty+3 of
// the tiles t = ty*TW + tx are the arrays (even, odd, even, odd) at t, t, t + TW, t + TW: linear
// in t, so Bᵀ (d B) runs over all of an image's tiles as one flat loop, whatever its width.
// Zeroed once per call: the rows of padding are the same for every channel and are never written.
int64_t h_array_floats(const Geometry& geo) { return (geo.tiles_h + 1) * geo.tiles_w + kStep; }

}  // namespace

int64_t input_scratch_floats(const Geometry& geo) { return 8 * h_array_floats(geo); }

// Tile tx reads padded columns 2tx..2tx+3; split by parity they are
// even[tx], odd[tx], even[tx+1], odd[tx+1], so a vector of tiles takes two pairs of loads and
// their deinterleaving. Each padded row's d B is computed once (a row serves two rows of tiles).
void transform_input(const Conv2dParams& p, const Geometry& geo, const float* x, float* V, int64_t ld,
                     int64_t plane, float* h) {  // h: the scratch
  const int64_t TW = geo.tiles_w, T = geo.per_image, A = h_array_floats(geo), pw = p.pad_w;
  const int64_t first_row = std::max<int64_t>(0, p.pad_h), end_row = std::min(geo.rows, p.H + p.pad_h);
  for (int64_t c = 0; c < p.C; ++c) {
    for (int64_t u = first_row; u < end_row; ++u) {  // padded row u: image row u - pad_h
      const float* row = x + (c * p.H + u - p.pad_h) * p.W;
      float* hu = h + (u % 2) * A + (u / 2) * TW;  // array (j, parity) at h + (2j + parity) * A
      for (int64_t tx = 0; tx < TW; tx += kStep) {
        const int64_t v = 2 * tx, n = std::min(kStep, TW - tx);
        Vec d0, d1, d2, d3;  // columns 2tx, 2tx+1, 2tx+2, 2tx+3 of kStep tiles
        deinterleave(load_padded(row, v, pw, p.W), load_padded(row, v + kStep, pw, p.W), d0, d1);
        deinterleave(load_padded(row, v + 2, pw, p.W), load_padded(row, v + 2 + kStep, pw, p.W), d2, d3);
        store(hu + tx, sub(d0, d2), n), store(hu + 2 * A + tx, add(d1, d2), n);
        store(hu + 4 * A + tx, sub(d2, d1), n), store(hu + 6 * A + tx, sub(d1, d3), n);
      }
    }
    float* out = V + c * ld;
    for (int64_t t = 0; t < T; t += kStep) {  // Bᵀ (d B) over padded rows 2ty..2ty+3
      const int64_t n = std::min(kStep, T - t);
      for (int j = 0; j < 4; ++j) {
        const float* even = h + 2 * j * A + t;
        const float* odd = even + A;
        const Vec h0 = load(even), h1 = load(odd), h2 = load(even + TW), h3 = load(odd + TW);
        store(out + (0 * 4 + j) * plane + t, sub(h0, h2), n);
        store(out + (1 * 4 + j) * plane + t, add(h1, h2), n);
        store(out + (2 * 4 + j) * plane + t, sub(h2, h1), n);
        store(out + (3 * 4 + j) * plane + t, sub(h1, h3), n);
      }
    }
  }
}

// transform_output's scratch: o[k][a][b][t], output (2ty+a, 2tx+b) of tile t of channel k, each
// array per_image floats plus a vector of slack.
namespace {
int64_t o_array_floats(const Geometry& geo) { return geo.per_image + kStep; }
}  // namespace

int64_t output_scratch_floats(const Conv2dParams& p, const Geometry& geo) {
  return p.K * 4 * o_array_floats(geo);
}

// A flat loop over the tiles into o, then each output row
// interleaves its even and odd columns.
void transform_output(const Conv2dParams& p, const Geometry& geo, const float* M, int64_t ld, int64_t plane,
                      float* y, const float* bias, float* o) {  // o: the scratch
  const int64_t TW = geo.tiles_w, T = geo.per_image, O = o_array_floats(geo);
  for (int64_t k = 0; k < p.K; ++k) {
    const Vec b = broadcast(bias ? bias[k] : 0.0f);
    const float* m = M + k * ld;
    float* ok = o + k * 4 * O;
    for (int64_t t = 0; t < T; t += kStep) {
      const int64_t n = std::min(kStep, T - t);
      Vec s[2][4];  // Aᵀ M
      for (int j = 0; j < 4; ++j) {
        const Vec m0 = load(m + (0 * 4 + j) * plane + t), m1 = load(m + (1 * 4 + j) * plane + t);
        const Vec m2 = load(m + (2 * 4 + j) * plane + t), m3 = load(m + (3 * 4 + j) * plane + t);
        s[0][j] = add(add(m0, m1), m2), s[1][j] = sub(sub(m1, m2), m3);
      }
      for (int a = 0; a < 2; ++a) {  // (Aᵀ M) A
        store(ok + 2 * a * O + t, add(add(add(s[a][0], s[a][1]), s[a][2]), b), n);
        store(ok + (2 * a + 1) * O + t, add(sub(sub(s[a][1], s[a][2]), s[a][3]), b), n);
      }
    }
  }
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t oh = 0; oh < p.P; ++oh) {
      const float* left = o + (k * 4 + 2 * (oh % 2)) * O + (oh / 2) * TW;  // columns 2tx
      const float* right = left + O;                                       // columns 2tx+1
      float* dst = y + (k * p.P + oh) * p.Q;
      for (int64_t tx = 0; tx < TW; tx += kStep) {
        const int64_t columns = p.Q - 2 * tx;
        Vec lo, hi;
        interleave(load(left + tx), load(right + tx), lo, hi);
        store(dst + 2 * tx, lo, std::min(kStep, columns));
        if (columns > kStep) store(dst + 2 * tx + kStep, hi, std::min(kStep, columns - kStep));
      }
    }
}

// transform_dy's scratch: q[a][b][t] = dy[2ty+a][2tx+b] of one channel, each array per_image
// floats plus a vector of slack; the entries past P or Q stay zero.
int64_t dy_scratch_floats(const Geometry& geo) { return 4 * (geo.per_image + kStep); }

// Each output row is split by column parity into q (the inverse of transform_output's
// interleaving), then A dY Aᵀ runs over the image's tiles as one flat loop.
void transform_dy(const Conv2dParams& p, const Geometry& geo, const float* dy, float* D, int64_t ld,
                  int64_t plane, float* q) {  // q: the scratch
  const int64_t TW = geo.tiles_w, T = geo.per_image, Q4 = T + kStep;
  for (int64_t k = 0; k < p.K; ++k) {
    for (int64_t oh = 0; oh < p.P; ++oh) {
      const float* row = dy + (k * p.P + oh) * p.Q;
      float* even = q + 2 * (oh % 2) * Q4 + (oh / 2) * TW;  // columns 2tx
      float* odd = even + Q4;                               // columns 2tx+1
      for (int64_t tx = 0; tx < TW; tx += kStep) {
        const int64_t n = std::min(kStep, TW - tx);
        Vec e, o;
        deinterleave(load_padded(row, 2 * tx, 0, p.Q), load_padded(row, 2 * tx + kStep, 0, p.Q), e, o);
        store(even + tx, e, n), store(odd + tx, o, n);
      }
    }
    float* out = D + k * ld;
    for (int64_t t = 0; t < T; t += kStep) {
      const int64_t n = std::min(kStep, T - t);
      const Vec y00 = load(q + t), y01 = load(q + Q4 + t), y10 = load(q + 2 * Q4 + t),
                y11 = load(q + 3 * Q4 + t);
      // dY Aᵀ: row a becomes (y_a0, y_a0 + y_a1, y_a0 - y_a1, -y_a1)
      const Vec zero = broadcast(0.0f);
      const Vec r0[4] = {y00, add(y00, y01), sub(y00, y01), sub(zero, y01)};
      const Vec r1[4] = {y10, add(y10, y11), sub(y10, y11), sub(zero, y11)};
      for (int j = 0; j < 4; ++j) {  // A (dY Aᵀ), column j
        store(out + (0 * 4 + j) * plane + t, r0[j], n);
        store(out + (1 * 4 + j) * plane + t, add(r0[j], r1[j]), n);
        store(out + (2 * 4 + j) * plane + t, sub(r0[j], r1[j]), n);
        store(out + (3 * 4 + j) * plane + t, sub(zero, r1[j]), n);
      }
    }
  }
}

// Along c with whole vectors into taps [9][C] per k, then transposed into dw[k] [C][9].
void weight_grad_from_transformed(const Conv2dParams& p, const float* dU, float* dw) {
  const int64_t K = p.K, C = p.C, row = (C + kStep - 1) / kStep * kStep;
  parallel_for(0, K, std::max<int64_t>(1, 2048 / C), [&](int64_t k0, int64_t k1) {
    std::vector<float> taps(size_t(9 * row));  // taps[rs*row + c] = dw[k, c, r, s]
    const Vec half = broadcast(0.5f);
    for (int64_t k = k0; k < k1; ++k) {
      for (int64_t c = 0; c < C; c += kStep) {
        const int64_t n = std::min(kStep, C - c);
        Vec z[3][4];  // Gᵀ X, X = dU[k, c] as 4×4
        for (int j = 0; j < 4; ++j) {
          const Vec x0 = load(dU + ((0 * 4 + j) * K + k) * C + c),
                    x1 = load(dU + ((1 * 4 + j) * K + k) * C + c);
          const Vec x2 = load(dU + ((2 * 4 + j) * K + k) * C + c),
                    x3 = load(dU + ((3 * 4 + j) * K + k) * C + c);
          z[0][j] = add(x0, mul(half, add(x1, x2))), z[1][j] = mul(half, sub(x1, x2));
          z[2][j] = add(mul(half, add(x1, x2)), x3);
        }
        for (int r = 0; r < 3; ++r) {  // (Gᵀ X) G, row r
          const Vec* v = z[r];
          store(taps.data() + (r * 3 + 0) * row + c, add(v[0], mul(half, add(v[1], v[2]))), n);
          store(taps.data() + (r * 3 + 1) * row + c, mul(half, sub(v[1], v[2])), n);
          store(taps.data() + (r * 3 + 2) * row + c, add(mul(half, add(v[1], v[2])), v[3]), n);
        }
      }
      transpose(taps.data(), 9, C, row, dw + k * C * 9, 9);
    }
  });
}

}  // namespace kindling::cpu::winograd
