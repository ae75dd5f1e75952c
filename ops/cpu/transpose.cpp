// Register blocks of kLanes x kLanes (simd.h): kLanes row loads (masked at the right edge), a
// transpose in registers, kLanes row stores (partial at the bottom edge). AVX-512 (16x16): four
// rounds of two-source lane permutes (each round swaps the off-diagonal sub-blocks of size 8, 4, 2,
// 1 between row pairs). AVX2 (8x8): the usual unpack, shuffle and 128-bit lane permute rounds.
#include "ops/cpu/transpose.h"

#include "ops/cpu/simd.h"

#include <algorithm>

namespace kindling::cpu {

#ifdef KINDLING_SIMD
namespace {

#if KINDLING_SIMD == 512

// One round: for each pair (r[i], r[i+B]) with i & B == 0, swap the off-diagonal BxB blocks.
template <int B>
inline __attribute__((always_inline)) void swap_blocks(__m512 (&r)[16], __m512i top, __m512i bottom) {
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) {
    if (i & B) continue;
    const __m512 t = _mm512_permutex2var_ps(r[i], top, r[i + B]);
    r[i + B] = _mm512_permutex2var_ps(r[i], bottom, r[i + B]);
    r[i] = t;
  }
}

// r[i] lane j <-> r[j] lane i. Top rows keep lanes l with l & B == 0 and take the bottom row's
// lane l - B elsewhere; bottom rows take the top row's lane l + B where l & B == 0.
inline __attribute__((always_inline)) void transpose_block(__m512 (&r)[16]) {
  swap_blocks<8>(r, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                 _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31));
  swap_blocks<4>(r, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                 _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31));
  swap_blocks<2>(r, _mm512_setr_epi32(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                 _mm512_setr_epi32(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31));
  swap_blocks<1>(r, _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                 _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31));
}

#else
// r[i] lane j <-> r[j] lane i, for 8 rows of 8.
inline __attribute__((always_inline)) void transpose_block(__m256 (&r)[8]) {
  __m256 t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {  // interleave row pairs: (r0 r1) -> a0 b0 a1 b1 | a4 b4 a5 b5
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {  // 4-row columns within each 128-bit half
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // low halves of rows 0-3 with those of rows 4-7, then the high
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
#endif

}  // namespace

void transpose(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst,
               int64_t dst_stride) {
  using simd::kLanes;
  for (int64_t i0 = 0; i0 < rows; i0 += kLanes) {
    const int64_t block_rows = std::min<int64_t>(kLanes, rows - i0);
    for (int64_t j0 = 0; j0 < cols; j0 += kLanes) {
      const int64_t block_cols = std::min<int64_t>(kLanes, cols - j0);
      const simd::Mask col_lanes = simd::first_lanes(block_cols);
      simd::Vec r[kLanes];
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        if (i >= block_rows) {
          r[i] = simd::zero();
          continue;
        }
        const float* row = src + (i0 + i) * src_stride + j0;
        // Callers walk each row (an image plane) forwards: fetch a few lines ahead, since 16 rows
        // a page apart are more streams than the hardware prefetcher follows.
        _mm_prefetch(reinterpret_cast<const char*>(row) + 256, _MM_HINT_T0);
        r[i] = block_cols == kLanes ? simd::load(row) : simd::load(row, col_lanes);
      }
      transpose_block(r);
#pragma GCC unroll 16
      for (int j = 0; j < kLanes; ++j)
        if (j < block_cols) simd::store_first(dst + (j0 + j) * dst_stride + i0, r[j], block_rows);
    }
  }
}

#else

void transpose(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst,
               int64_t dst_stride) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

#endif

}  // namespace kindling::cpu
