// One vector register of floats and the few operations kindling's hand-written CPU kernels use,
// for the widest ISA the build targets (-march=native): AVX-512 (16 lanes, 32 registers) or AVX2
// with FMA (8 lanes, 16 registers). A kernel is written once against Vec and these functions and
// takes its tile sizes from the register count; KINDLING_SIMD (512 or 256) says which one is
// compiled in, and is undefined on a machine with neither (callers then use a plain loop or BLAS).
// Masked loads and partial stores never touch the lanes outside their range, so a tile's ragged
// edge may end at the last float of a buffer.
#pragma once
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace kindling::cpu::simd {

#if defined(__AVX512F__)
#define KINDLING_SIMD 512

constexpr int kLanes = 16;
constexpr int kRegisters = 32;
using Vec = __m512;
using Mask = __mmask16;

// The first min(n, 16) lanes.
inline Mask first_lanes(int64_t n) { return n >= 16 ? Mask(0xFFFF) : Mask((1u << n) - 1u); }
inline Vec zero() { return _mm512_setzero_ps(); }
inline Vec broadcast(float x) { return _mm512_set1_ps(x); }
inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
inline Vec load(const float* p, Mask lanes) { return _mm512_maskz_loadu_ps(lanes, p); }
inline void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
// The first min(n, 16) lanes of v to p.
inline void store_first(float* p, Vec v, int64_t n) { _mm512_mask_storeu_ps(p, first_lanes(n), v); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec and_bits(Vec a, Vec b) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
// Lanes lo..hi-1 (clamped to 0..16).
inline Mask lanes_between(int64_t lo, int64_t hi) {
  return Mask(first_lanes(hi < 0 ? 0 : hi) & ~first_lanes(lo < 0 ? 0 : lo));
}
// Lanes first..end-1 of v to p[first..end-1] (0 <= first < end <= 16).
inline void store_lanes(float* p, Vec v, int64_t first, int64_t end) {
  _mm512_mask_storeu_ps(p, lanes_between(first, end), v);
}
// The 32 floats of a then b split by parity: even = a0 a2 .. a14 b0 .. b14, odd = a1 a3 .. b15.
inline void deinterleave(Vec a, Vec b, Vec& even, Vec& odd) {
  const __m512i even_index = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  even = _mm512_permutex2var_ps(a, even_index, b);
  odd = _mm512_permutex2var_ps(a, _mm512_add_epi32(even_index, _mm512_set1_epi32(1)), b);
}
// The inverse: lo = a0 b0 a1 b1 .. a7 b7, hi = a8 b8 .. a15 b15.
inline void interleave(Vec a, Vec b, Vec& lo, Vec& hi) {
  const __m512i lo_index = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  lo = _mm512_permutex2var_ps(a, lo_index, b);
  hi = _mm512_permutex2var_ps(a, _mm512_add_epi32(lo_index, _mm512_set1_epi32(8)), b);
}
inline float sum(Vec v) { return _mm512_reduce_add_ps(v); }

#elif defined(__AVX2__) && defined(__FMA__)
#define KINDLING_SIMD 256

constexpr int kLanes = 8;
constexpr int kRegisters = 16;
using Vec = __m256;
using Mask = __m256i;  // a lane is on when its sign bit is set (vmaskmovps)

inline Mask first_lanes(int64_t n) {
  const int count = n >= 8 ? 8 : int(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline Vec zero() { return _mm256_setzero_ps(); }
inline Vec broadcast(float x) { return _mm256_set1_ps(x); }
inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
inline Vec load(const float* p, Mask lanes) { return _mm256_maskload_ps(p, lanes); }
inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
// The first min(n, 8) lanes of v to p. Not a masked store: vmaskmovps to memory is microcoded on
// AMD's cores (tens of cycles), and a transpose stores a partial row per register.
inline void store_first(float* p, Vec v, int64_t n) {
  if (n >= 8) return store(p, v);
  __m128 part = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(p, part);
    part = _mm256_extractf128_ps(v, 1);
    p += 4, n -= 4;
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), part);
    part = _mm_movehl_ps(part, part);
    p += 2, n -= 2;
  }
  if (n >= 1) _mm_store_ss(p, part);
}
// Lanes first..end-1 of v to p[first..end-1] (0 <= first < end <= 8): shifted down, then stored
// as store_first does, for the reason given there.
inline void store_lanes(float* p, Vec v, int64_t first, int64_t end) {
  const __m256i down =
      _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(int(first)));
  store_first(p + first, _mm256_permutevar8x32_ps(v, down), end - first);
}
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec and_bits(Vec a, Vec b) { return _mm256_and_ps(a, b); }
// Lanes lo..hi-1 (clamped to 0..8).
inline Mask lanes_between(int64_t lo, int64_t hi) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int first = lo < 0 ? 0 : lo > 8 ? 8 : int(lo), end = hi < 0 ? 0 : hi > 8 ? 8 : int(hi);
  return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(first), lane),
                             _mm256_cmpgt_epi32(_mm256_set1_epi32(end), lane));
}
// The 16 floats of a then b split by parity: even = a0 a2 a4 a6 b0 b2 b4 b6, odd = a1 .. b7.
inline void deinterleave(Vec a, Vec b, Vec& even, Vec& odd) {
  // shuffle_ps works per 128-bit half: a0 a2 b0 b2 | a4 a6 b4 b6; the 64-bit swap puts them in order.
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
// The inverse: lo = a0 b0 a1 b1 a2 b2 a3 b3, hi = a4 b4 .. a7 b7.
inline void interleave(Vec a, Vec b, Vec& lo, Vec& hi) {
  const Vec low_pairs = _mm256_unpacklo_ps(a, b), high_pairs = _mm256_unpackhi_ps(a, b);  // per 128 bits
  lo = _mm256_permute2f128_ps(low_pairs, high_pairs, 0x20);
  hi = _mm256_permute2f128_ps(low_pairs, high_pairs, 0x31);
}
inline float sum(Vec v) {
  const __m128 halves = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

#endif

}  // namespace kindling::cpu::simd
