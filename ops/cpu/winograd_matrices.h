// The matrices of Winograd's F(m×m, 3×3) (Lavin & Gray 2016) and the vector arithmetic the tile
// transforms (winograd_transforms.cpp) are written in. F(2×2, 3×3) interpolates at 0, 1, -1 and
// ∞; F(4×4, 3×3) at 0, ±1, ±2 and ∞:
//   y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A   for a 3×3 filter g, an α×α input tile d, an m×m output y.
// apply<Coef>(in, out) computes out[r] = Σ_c Coef[r][c] in[c] with the coefficients known at
// compile time: zeros are skipped, ±1 are additions, the rest one FMA each.
#pragma once
#include "ops/cpu/simd.h"

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace kindling::cpu::winograd {

template <size_t R, size_t C>
using Matrix = std::array<std::array<float, C>, R>;

template <size_t R, size_t C>
constexpr Matrix<C, R> transposed(const Matrix<R, C>& a) {
  Matrix<C, R> t{};
  for (size_t r = 0; r < R; ++r)
    for (size_t c = 0; c < C; ++c) t[c][r] = a[r][c];
  return t;
}

template <int M>
struct Tile;

template <>
struct Tile<2> {
  static constexpr int m = 2, alpha = 4;
  static constexpr Matrix<4, 4> BT = {{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}};
  static constexpr Matrix<4, 3> G = {{{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}}};
  static constexpr Matrix<2, 4> AT = {{{1, 1, 1, 0}, {0, 1, -1, -1}}};
  static constexpr Matrix<3, 4> GT = transposed(G);
  static constexpr Matrix<4, 2> A = transposed(AT);
};

template <>
struct Tile<4> {
  static constexpr int m = 4, alpha = 6;
  static constexpr Matrix<6, 6> BT = {{{4, 0, -5, 0, 1, 0},
                                       {0, -4, -4, 1, 1, 0},
                                       {0, 4, -4, -1, 1, 0},
                                       {0, -2, -1, 2, 1, 0},
                                       {0, 2, -1, -2, 1, 0},
                                       {0, 4, 0, -5, 0, 1}}};
  static constexpr Matrix<6, 3> G = {{{1.0f / 4, 0, 0},
                                      {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                      {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                      {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                      {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                      {0, 0, 1}}};
  static constexpr Matrix<4, 6> AT = {
      {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}};
  static constexpr Matrix<3, 6> GT = transposed(G);
  static constexpr Matrix<6, 4> A = transposed(AT);
};

// kStep tiles (or channels) at a time: one vector register, or one float without SIMD.
#ifdef KINDLING_SIMD
using simd::Vec;
constexpr int64_t kStep = simd::kLanes;
inline Vec broadcast(float x) { return simd::broadcast(x); }
inline Vec load(const float* p) { return simd::load(p); }
inline void store(float* p, Vec v, int64_t n) { simd::store_first(p, v, n); }
inline void store_lanes(float* p, Vec v, int64_t first, int64_t end) { simd::store_lanes(p, v, first, end); }
// v where mask's lane is all ones, 0 where it is 0 (a NaN in v does not leak through a 0).
inline Vec keep(Vec v, Vec mask) { return simd::and_bits(v, mask); }
inline Vec add(Vec a, Vec b) { return simd::add(a, b); }
inline Vec sub(Vec a, Vec b) { return simd::sub(a, b); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return simd::fmadd(a, b, c); }
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
inline void store_lanes(float* p, Vec v, int64_t first, int64_t end) {
  if (first == 0 && end > 0) *p = v;
}
inline Vec keep(Vec v, Vec mask) { return std::bit_cast<uint32_t>(mask) != 0 ? v : 0.0f; }
inline Vec add(Vec a, Vec b) { return a + b; }
inline Vec sub(Vec a, Vec b) { return a - b; }
inline Vec fmadd(Vec a, Vec b, Vec c) { return a * b + c; }
inline Vec load_padded(const float* row, int64_t v, int64_t pad, int64_t W) {
  return v >= pad && v < W + pad ? row[v - pad] : 0.0f;
}
inline void deinterleave(Vec a, Vec b, Vec& even, Vec& odd) { even = a, odd = b; }
inline void interleave(Vec a, Vec b, Vec& lo, Vec& hi) { lo = a, hi = b; }
#endif

// m consecutive vectors in[] of a row split by column phase: phase[k] lane l = element m*l + k.
template <int M>
inline void split_phases(const Vec* in, Vec* phase) {
  if constexpr (M == 2) {
    deinterleave(in[0], in[1], phase[0], phase[1]);
  } else {
    Vec even_a, odd_a, even_b, odd_b;
    deinterleave(in[0], in[1], even_a, odd_a);
    deinterleave(in[2], in[3], even_b, odd_b);
    deinterleave(even_a, even_b, phase[0], phase[2]);
    deinterleave(odd_a, odd_b, phase[1], phase[3]);
  }
}

// The inverse: m vectors of phases merged into m consecutive vectors of a row.
template <int M>
inline void merge_phases(const Vec* phase, Vec* out) {
  if constexpr (M == 2) {
    interleave(phase[0], phase[1], out[0], out[1]);
  } else {
    Vec lo02, hi02, lo13, hi13;
    interleave(phase[0], phase[2], lo02, hi02);
    interleave(phase[1], phase[3], lo13, hi13);
    interleave(lo02, lo13, out[0], out[1]);
    interleave(hi02, hi13, out[2], out[3]);
  }
}

template <float Coefficient>
inline Vec term(Vec acc, Vec x) {
  if constexpr (Coefficient == 0.0f)
    return acc;
  else if constexpr (Coefficient == 1.0f)
    return add(acc, x);
  else if constexpr (Coefficient == -1.0f)
    return sub(acc, x);
  else
    return fmadd(broadcast(Coefficient), x, acc);
}

template <const auto& Coef, size_t Row, size_t... Cols>
inline Vec dot_row(const Vec* in, std::index_sequence<Cols...>) {
  Vec acc = broadcast(0.0f);
  ((acc = term<Coef[Row][Cols]>(acc, in[Cols])), ...);
  return acc;
}

template <const auto& Coef, size_t... Rows>
inline void apply_rows(const Vec* in, Vec* out, std::index_sequence<Rows...>) {
  constexpr size_t cols = Coef[0].size();
  ((out[Rows] = dot_row<Coef, Rows>(in, std::make_index_sequence<cols>{})), ...);
}

// out[r] = Σ_c Coef[r][c] in[c].
template <const auto& Coef>
inline void apply(const Vec* in, Vec* out) {
  apply_rows<Coef>(in, out, std::make_index_sequence<Coef.size()>{});
}

}  // namespace kindling::cpu::winograd
