// bf16 GEMM kernels on vdpbf16ps (see gemm_bf16.h). The kernels carry their own target
// attributes, so they build whatever -march the rest of the build uses, and run only where
// cpu_has_avx512_bf16() says so. vdpbf16ps(acc, a, b) adds a[2i]*b[2i] + a[2i+1]*b[2i+1] to
// acc[i]: the products of bf16 are exact in fp32, so the only rounding is fp32's in the sums.
#include "ops/cpu/gemm_bf16.h"

#include "core/error.h"
#include "core/precision.h"

#include <algorithm>
#include <bit>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define KINDLING_BF16_KERNELS 1
#define KINDLING_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))
#endif

namespace kindling::cpu {

uint16_t to_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude < 0x00800000u) return uint16_t((u >> 16) & 0x8000u);  // zero or denormal: ±0
  if (magnitude > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // NaN: quiet
  if (magnitude == 0x7f800000u) return uint16_t(u >> 16);             // ±inf
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float from_bf16(uint16_t bits) { return std::bit_cast<float>(uint32_t(bits) << 16); }

namespace {

constexpr int64_t kRows = 8;          // A's panel and the nn tile's rows
constexpr int64_t kColumns = 48;      // the nn tile's columns: 3 vectors of 16
constexpr int64_t kDepthPairs = 128;  // B's block [pairs][48] words: 24 KB, kept in L1
constexpr int64_t kDotRows = 4;       // the nt tile: 4 rows of A against 4 of B
constexpr int64_t kChunk = 32;        // bf16 per vector, the nt rows' padding

uint32_t pair(float lo, float hi) { return uint32_t(to_bf16(lo)) | uint32_t(to_bf16(hi)) << 16; }

void require_bf16() {
  KINDLING_CHECK(cpu_has_avx512_bf16(), DeviceError,
                 "bf16 GEMM: this CPU has no AVX512-BF16 (vdpbf16ps); use precision fp32");
}

#ifdef KINDLING_BF16_KERNELS

KINDLING_BF16_TARGET inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << std::max<int64_t>(n, 0)) - 1u);
}

// out[p*48 + j] = pair(B[2p][j], B[2p+1][j]) for `pairs` pairs of rows from row0 on (rows at or
// past K are zero) and j < cols (<= 48; the rest zero). cvtne2ps puts the 16 bf16 of row 2p below
// those of row 2p+1; the permutation interleaves them into pairs.
KINDLING_BF16_TARGET void pack_b(const float* B, int64_t ldb, int64_t K, int64_t row0, int64_t pairs,
                                 int64_t cols, uint32_t* out) {
  alignas(64) static const uint16_t interleave[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,
                                                      21, 6,  22, 7,  23, 8,  24, 9,  25, 10, 26,
                                                      11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i index = _mm512_load_si512(interleave);
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t k = row0 + 2 * p;
    for (int64_t v = 0; v < kColumns / 16; ++v) {
      const __mmask16 lanes = first_lanes(cols - 16 * v);
      const __m512 lo = k < K ? _mm512_maskz_loadu_ps(lanes, B + k * ldb + 16 * v) : _mm512_setzero_ps();
      const __m512 hi =
          k + 1 < K ? _mm512_maskz_loadu_ps(lanes, B + (k + 1) * ldb + 16 * v) : _mm512_setzero_ps();
      const __m512i words = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
      _mm512_storeu_si512(out + p * kColumns + 16 * v, _mm512_permutexvar_epi16(index, words));
    }
  }
}

// C[rows, cols] (+)= the 8×48 tile of a panel's `pairs` pairs against B's block.
KINDLING_BF16_TARGET void nn_tile(const uint32_t* a, const uint32_t* b, int64_t pairs, float* C, int64_t ldc,
                                  int64_t rows, int64_t cols, bool accumulate) {
  __m512 acc[kRows][3];
  for (auto& row : acc)
    for (auto& v : row) v = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * kColumns);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * kColumns + 16);
    const __m512bh b2 = (__m512bh)_mm512_loadu_si512(b + p * kColumns + 32);
    for (int64_t i = 0; i < kRows; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(int(a[p * kRows + i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
      acc[i][2] = _mm512_dpbf16_ps(acc[i][2], ai, b2);
    }
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t v = 0; v < 3 && 16 * v < cols; ++v) {
      const __mmask16 lanes = first_lanes(cols - 16 * v);
      float* c = C + i * ldc + 16 * v;
      __m512 out = acc[i][v];
      if (accumulate) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(lanes, c));
      _mm512_mask_storeu_ps(c, lanes, out);
    }
}

KINDLING_BF16_TARGET void nn(const PackedBf16& a, int64_t N, const float* B, int64_t ldb, float* C,
                             int64_t ldc, bool accumulate) {
  const int64_t K = a.cols(), total_pairs = a.pairs(), panels = (a.rows() + kRows - 1) / kRows;
  std::vector<uint32_t> block(size_t(kDepthPairs * kColumns));
  for (int64_t p0 = 0; p0 < total_pairs; p0 += kDepthPairs) {
    const int64_t pairs = std::min(kDepthPairs, total_pairs - p0);
    const bool add = accumulate || p0 > 0;
    for (int64_t n0 = 0; n0 < N; n0 += kColumns) {
      const int64_t cols = std::min(kColumns, N - n0);
      pack_b(B + n0, ldb, K, 2 * p0, pairs, cols, block.data());
      for (int64_t panel = 0; panel < panels; ++panel) {
        const int64_t m0 = panel * kRows;
        nn_tile(a.panel(panel) + p0 * kRows, block.data(), pairs, C + m0 * ldc + n0, ldc,
                std::min(kRows, a.rows() - m0), cols, add);
      }
    }
  }
}

// Row r of src [rows, K] (row stride ld) to bf16 at out + r*padded, zero-padded to `padded`
// (a multiple of 32): the depth order is kept, so lane i of a vector holds the pair (2i, 2i+1).
KINDLING_BF16_TARGET void rows_to_bf16(const float* src, int64_t rows, int64_t K, int64_t ld, int64_t padded,
                                       uint16_t* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < padded; k += kChunk) {
      const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(K - k), src + r * ld + k);
      const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(K - k - 16), src + r * ld + k + 16);
      _mm512_storeu_si512(out + r * padded + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

// C[rows, cols] (+)= dot products of rows a[0..4) and b[0..4) (each `padded` bf16); rows past
// `rows` or `cols` repeat the last one and are not stored.
KINDLING_BF16_TARGET void nt_tile(const uint16_t* a, const uint16_t* b, int64_t padded, int64_t rows,
                                  int64_t cols, float* C, int64_t ldc, bool accumulate) {
  const uint16_t* a_row[kDotRows];
  const uint16_t* b_row[kDotRows];
  for (int64_t i = 0; i < kDotRows; ++i) {
    a_row[i] = a + std::min(i, rows - 1) * padded;
    b_row[i] = b + std::min(i, cols - 1) * padded;
  }
  __m512 acc[kDotRows][kDotRows];
  for (auto& row : acc)
    for (auto& v : row) v = _mm512_setzero_ps();
  for (int64_t k = 0; k < padded; k += kChunk) {
    __m512bh av[kDotRows], bv[kDotRows];
    for (int64_t i = 0; i < kDotRows; ++i) {
      av[i] = (__m512bh)_mm512_loadu_si512(a_row[i] + k);
      bv[i] = (__m512bh)_mm512_loadu_si512(b_row[i] + k);
    }
    for (int64_t i = 0; i < kDotRows; ++i)
      for (int64_t j = 0; j < kDotRows; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av[i], bv[j]);
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      alignas(64) float lanes[16];  // summed in lane order (GCC 12's _mm512_reduce_add_ps warns)
      _mm512_store_ps(lanes, acc[i][j]);
      float sum = lanes[0];
      for (int l = 1; l < 16; ++l) sum += lanes[l];
      C[i * ldc + j] = accumulate ? C[i * ldc + j] + sum : sum;
    }
}

KINDLING_BF16_TARGET void nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                             int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  const int64_t padded = std::max<int64_t>(kChunk, (K + kChunk - 1) / kChunk * kChunk);
  thread_local std::vector<uint16_t> rows;  // A's rows then B's, reused from call to call
  rows.resize(size_t((M + N) * padded));
  uint16_t* a = rows.data();
  uint16_t* b = a + M * padded;
  rows_to_bf16(A, M, K, lda, padded, a);
  rows_to_bf16(B, N, K, ldb, padded, b);
  for (int64_t i = 0; i < M; i += kDotRows)
    for (int64_t j = 0; j < N; j += kDotRows)
      nt_tile(a + i * padded, b + j * padded, padded, std::min(kDotRows, M - i), std::min(kDotRows, N - j),
              C + i * ldc + j, ldc, accumulate);
}

#endif  // KINDLING_BF16_KERNELS

}  // namespace

PackedBf16::PackedBf16(StridedMatrix a, int64_t rows, int64_t cols) : rows_(rows), cols_(cols) {
  const int64_t panels = (rows + kRows - 1) / kRows;
  words_ = std::make_unique<uint32_t[]>(size_t(std::max<int64_t>(1, panels * pairs() * kRows)));
  for (int64_t panel = 0; panel < panels; ++panel)
    for (int64_t p = 0; p < pairs(); ++p)
      for (int64_t i = 0; i < kRows; ++i) {
        const int64_t m = panel * kRows + i, k = 2 * p;
        const float lo = m < rows ? a.at(m, k) : 0.0f;
        const float hi = m < rows && k + 1 < cols ? a.at(m, k + 1) : 0.0f;
        words_[size_t((panel * pairs() + p) * kRows + i)] = pair(lo, hi);
      }
}

void gemm_bf16_nn(const PackedBf16& a, int64_t N, const float* B, int64_t ldb, float* C, int64_t ldc,
                  bool accumulate) {
  require_bf16();
  if (a.rows() == 0 || N == 0) return;
  if (a.cols() == 0) {  // an empty sum
    if (!accumulate)
      for (int64_t m = 0; m < a.rows(); ++m) std::fill_n(C + m * ldc, N, 0.0f);
    return;
  }
#ifdef KINDLING_BF16_KERNELS
  nn(a, N, B, ldb, C, ldc, accumulate);
#endif
}

void gemm_bf16_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float* C, int64_t ldc, bool accumulate) {
  require_bf16();
  if (M == 0 || N == 0) return;
#ifdef KINDLING_BF16_KERNELS
  nt(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
#endif
}

}  // namespace kindling::cpu
