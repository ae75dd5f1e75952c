// 16x16 blocks: 16 masked row loads, four rounds of two-source lane permutes (each round swaps the
// off-diagonal sub-blocks of size 8, 4, 2, 1 between row pairs), 16 masked stores.
#include "ops/cpu/transpose.h"

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace kindling::cpu {

#if defined(__AVX512F__)
namespace {

__mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u); }

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
inline __attribute__((always_inline)) void transpose16(__m512 (&r)[16]) {
  swap_blocks<8>(r, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                 _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31));
  swap_blocks<4>(r, _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                 _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31));
  swap_blocks<2>(r, _mm512_setr_epi32(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                 _mm512_setr_epi32(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31));
  swap_blocks<1>(r, _mm512_setr_epi32(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                 _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31));
}

}  // namespace

void transpose(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst, int64_t dst_stride) {
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {
    const int64_t block_rows = std::min<int64_t>(16, rows - i0);
    const __mmask16 row_lanes = first_lanes(block_rows);
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const int64_t block_cols = std::min<int64_t>(16, cols - j0);
      const __mmask16 col_lanes = first_lanes(block_cols);
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        if (i >= block_rows) {
          r[i] = _mm512_setzero_ps();
          continue;
        }
        const float* row = src + (i0 + i) * src_stride + j0;
        // Callers walk each row (an image plane) forwards: fetch a few lines ahead, since 16 rows
        // a page apart are more streams than the hardware prefetcher follows.
        _mm_prefetch(reinterpret_cast<const char*>(row) + 256, _MM_HINT_T0);
        r[i] = _mm512_maskz_loadu_ps(col_lanes, row);
      }
      transpose16(r);
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j)
        if (j < block_cols) _mm512_mask_storeu_ps(dst + (j0 + j) * dst_stride + i0, row_lanes, r[j]);
    }
  }
}

#else

void transpose(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst, int64_t dst_stride) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

#endif

}  // namespace kindling::cpu
