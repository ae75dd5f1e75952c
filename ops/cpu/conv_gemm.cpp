// Convolution GEMM kernels. With AVX-512 or AVX2 (simd.h), C is computed in register tiles:
//   gemm_nn: kRows rows x kVectors vectors of C (AVX-512: 8 x 48 floats in 24 zmm accumulators;
//            AVX2: 4 x 24 floats in 12 ymm); per k one row of B is loaded (3 vectors) and kRows
//            packed A values broadcast. B is read in place, so the lowered image is not copied
//            again (no packing); columns past N are masked.
//   gemm_nt: kNtRows x kNtCols of C (4 x 4 with AVX-512, 3 x 3 with AVX2), each a vector of
//            partial dot products along K, summed across lanes once at the end of K.
// The tile loops put the N (resp. M) tile outermost so the operand tile being reused stays in L1.
#include "ops/cpu/conv_gemm.h"
#include "ops/cpu/simd.h"
#include "ops/cpu/transpose.h"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <utility>

namespace kindling::cpu {

std::vector<int64_t> strided_rows(int64_t rows, int64_t ld) {
  std::vector<int64_t> offsets(static_cast<size_t>(rows));
  for (int64_t k = 0; k < rows; ++k) offsets[size_t(k)] = k * ld;
  return offsets;
}

#ifdef KINDLING_SIMD
namespace {

using simd::kLanes;
using simd::Mask;
using simd::Vec;

// Register budget: gemm_nn holds kRows x kVectors accumulators plus kVectors B vectors and one
// broadcast; gemm_nt holds kNtRows x kNtCols accumulators plus kNtRows + kNtCols operands.
constexpr int kRows = simd::kRegisters == 32 ? 8 : 4;  // gemm_nn: rows of C per tile (one A panel)
constexpr int kVectors = 3;                            // gemm_nn: vectors of C per tile row
constexpr int kNtRows = simd::kRegisters == 32 ? 4 : 3, kNtCols = kNtRows;
static_assert(kRows * kVectors + kVectors + 1 <= simd::kRegisters);
static_assert(kNtRows * kNtCols + kNtRows + kNtCols <= simd::kRegisters);

// Where gemm_nn's B vectors come from: vector v of row k of the current column tile.
struct OffsetRows {  // row k at base + offsets[k], its vectors side by side
  const float* base;
  const int64_t* offsets;
  const float* at(int64_t k, int v) const { return base + offsets[k] + kLanes * v; }
};
struct ColumnBlocks {  // vector v of row k at start[v] + k*ld
  const float* start[kVectors];
  int64_t ld;
  const float* at(int64_t k, int v) const { return start[v] + k * ld; }
};

// C[rows<=kRows, kLanes*(NV-1) + last_lanes] (+)= panel [k0+K][kRows] · B[k0.., same columns]
// over depth k0..k0+K-1; the last vector has last_lanes < kLanes columns when Ragged (a full tile
// keeps the mask out of the loop: with AVX2 it would take the sixteenth register and push B's
// vectors out to memory).
template <int NV, bool Ragged, typename Source>
void nn_tile(const float* panel, Source B, int64_t k0, int64_t K, float* C, int64_t ldc, int rows,
             int64_t last_lanes, bool accumulate) {
  const Mask last_mask = simd::first_lanes(last_lanes);
  Vec acc[kRows][NV];
#pragma GCC unroll 8
  for (int m = 0; m < kRows; ++m)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[m][v] = simd::zero();
  for (int64_t k = k0; k < k0 + K; ++k) {
    Vec b[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV - 1; ++v) b[v] = simd::load(B.at(k, v));
    b[NV - 1] = Ragged ? simd::load(B.at(k, NV - 1), last_mask) : simd::load(B.at(k, NV - 1));
#if KINDLING_SIMD == 256
    // With all 16 registers in use GCC would rather fold B's loads into every FMA (12 loads per k
    // instead of 3, and the loads, not the FMAs, set the pace); an opaque value has to stay put.
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) asm("" : "+x"(b[v]));
#endif
    const float* a = panel + k * kRows;
#pragma GCC unroll 8
    for (int m = 0; m < kRows; ++m) {
      const Vec a_m = simd::broadcast(a[m]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[m][v] = simd::fmadd(a_m, b[v], acc[m][v]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < kRows; ++m) {
    if (m >= rows) break;
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      float* c = C + m * ldc + kLanes * v;
      const bool partial = Ragged && v == NV - 1;
      Vec value = acc[m][v];
      if (accumulate) value = simd::add(value, partial ? simd::load(c, last_mask) : simd::load(c));
      simd::store_first(c, value, partial ? last_lanes : kLanes);
    }
  }
}

// kNnTiles<Source>[vectors-1][ragged]: the tile for 1..kVectors vectors, full or ragged.
template <typename Source>
using NnTile = void (*)(const float*, Source, int64_t, int64_t, float*, int64_t, int, int64_t, bool);
template <typename Source>
constexpr NnTile<Source> kNnTiles[kVectors][2] = {{&nn_tile<1, false, Source>, &nn_tile<1, true, Source>},
                                                  {&nn_tile<2, false, Source>, &nn_tile<2, true, Source>},
                                                  {&nn_tile<3, false, Source>, &nn_tile<3, true, Source>}};

// Depth per pass of gemm_nn: a column tile of B stays in cache while every panel of A passes
// over it; deeper products (ResNet-18's 4608) take several passes, C accumulating between them.
// AVX-512: 800 x 48 floats (150 KB) in L2. AVX2: 4-row panels pass over B twice as often, and
// from L2 the loads could not keep up with the FMAs: 192 x 24 floats (up to 24 KB) stay in L1.
constexpr int64_t kDepth = simd::kRegisters == 32 ? 800 : 192;

// The tile loop of gemm_nn: depth blocks, then column tiles of up to kVectors vectors (B's tile
// stays in cache while every panel of A passes over it); make_source(n0, vectors) gives the B
// source of the tile at n0.
template <typename MakeSource>
void nn_tiles(const PackedA& a, int64_t N, MakeSource make_source, float* C, int64_t ldc, bool accumulate) {
  const int64_t M = a.rows(), K = a.cols();
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t depth = std::min(kDepth, K - k0);
    const bool add = accumulate || k0 > 0;
    for (int64_t n0 = 0; n0 < N; n0 += kLanes * kVectors) {
      const int64_t width = std::min<int64_t>(kLanes * kVectors, N - n0);
      const int vectors = int((width + kLanes - 1) / kLanes);
      const int64_t last = width - kLanes * (vectors - 1);  // columns of the last vector
      const auto source = make_source(n0, vectors);
      for (int64_t m0 = 0; m0 < M; m0 += kRows) {
        const float* panel = a.packed() + m0 * K;
        const int rows = int(std::min<int64_t>(kRows, M - m0));
        float* c = C + m0 * ldc + n0;
        const auto tile = kNnTiles<decltype(source)>[vectors - 1][last < kLanes];
        tile(panel, source, k0, depth, c, ldc, rows, last, add);
      }
    }
  }
}

#if KINDLING_SIMD == 512
// Half the live lanes of a and half of b, twice, added: one round of lane_sums16.
inline __attribute__((always_inline)) __m512 pair_sum(__m512 a, __m512 b, __m512i lo, __m512i hi) {
  return _mm512_add_ps(_mm512_permutex2var_ps(a, lo, b), _mm512_permutex2var_ps(a, hi, b));
}

// Lane sums of 16 vectors in one vector: result lane i = sum of v[i]'s 16 lanes. Four rounds of
// pair_sum (15 pairs, 45 instructions), where separate per-vector reductions would take 16 chains
// of shuffles. Each round keeps the vectors' order, so lane i ends up holding v[i].
inline __attribute__((always_inline)) __m512 lane_sums16(const __m512 (&v)[16]) {
  const __m512i lo0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi0 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const __m512i lo1 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  const __m512i hi1 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  const __m512i lo2 = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
  const __m512i hi2 = _mm512_setr_epi32(2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
  const __m512i lo3 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i hi3 = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 w0 = pair_sum(v[0], v[1], lo0, hi0), w1 = pair_sum(v[2], v[3], lo0, hi0);
  const __m512 w2 = pair_sum(v[4], v[5], lo0, hi0), w3 = pair_sum(v[6], v[7], lo0, hi0);
  const __m512 w4 = pair_sum(v[8], v[9], lo0, hi0), w5 = pair_sum(v[10], v[11], lo0, hi0);
  const __m512 w6 = pair_sum(v[12], v[13], lo0, hi0), w7 = pair_sum(v[14], v[15], lo0, hi0);
  const __m512 x0 = pair_sum(w0, w1, lo1, hi1), x1 = pair_sum(w2, w3, lo1, hi1);
  const __m512 x2 = pair_sum(w4, w5, lo1, hi1), x3 = pair_sum(w6, w7, lo1, hi1);
  const __m512 y0 = pair_sum(x0, x1, lo2, hi2), y1 = pair_sum(x2, x3, lo2, hi2);
  return pair_sum(y0, y1, lo3, hi3);
}

// C[m][n] (+)= the lane sum of acc[m*4 + n], for m < MR, n < NR: all sixteen sums in one vector
// (lane_sums16), then per row a lane permute down to lane 0 and a masked store.
template <int MR, int NR>
void store_dot_products(const Vec (&acc)[16], float* C, int64_t ldc, bool accumulate) {
  const __m512 sums = lane_sums16(acc);  // lane m*4 + n holds C[m][n]
  const __mmask16 row_mask = __mmask16((1u << NR) - 1u);
#pragma GCC unroll 4
  for (int m = 0; m < MR; ++m) {
    const __m512i from = _mm512_add_epi32(_mm512_set1_epi32(m * 4),
                                          _mm512_setr_epi32(0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m512 row = _mm512_permutex2var_ps(sums, from, sums);
    float* c = C + m * ldc;
    const __m512 value = accumulate ? _mm512_add_ps(row, _mm512_maskz_loadu_ps(row_mask, c)) : row;
    _mm512_mask_storeu_ps(c, row_mask, value);
  }
}
#else
// C[m][n] (+)= the lane sum of acc[m*kNtCols + n], for m < MR, n < NR.
template <int MR, int NR>
void store_dot_products(const Vec (&acc)[kNtRows * kNtCols], float* C, int64_t ldc, bool accumulate) {
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) {
      const float dot = simd::sum(acc[m * kNtCols + n]);
      C[m * ldc + n] = accumulate ? C[m * ldc + n] + dot : dot;
    }
}
#endif

// C[MR, NR] (+)= A[MR, K] · B[NR, K]ᵀ (MR <= kNtRows, NR <= kNtCols): vectors of partial dot
// products along K, summed across lanes once at the end.
template <int MR, int NR>
void nt_tile(const float* A, int64_t lda, const float* B, const int64_t* row_offsets, int64_t K, float* C,
             int64_t ldc, bool accumulate, Segments segments) {
  Vec acc[kNtRows * kNtCols];
#pragma GCC unroll 16
  for (int i = 0; i < kNtRows * kNtCols; ++i) acc[i] = simd::zero();
  for (int64_t t = 0; t < segments.count; ++t) {
    const float* a_rows = A + t * segments.a_stride;
    const float* b_rows[NR];
#pragma GCC unroll 4
    for (int n = 0; n < NR; ++n) b_rows[n] = B + t * segments.b_stride + row_offsets[n];
    for (int64_t k = 0; k < K; k += kLanes) {
      const Mask mask = simd::first_lanes(K - k);
      Vec a[MR], b[NR];
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) a[m] = simd::load(a_rows + m * lda + k, mask);
#pragma GCC unroll 4
      for (int n = 0; n < NR; ++n) b[n] = simd::load(b_rows[n] + k, mask);
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
        for (int n = 0; n < NR; ++n) acc[m * kNtCols + n] = simd::fmadd(a[m], b[n], acc[m * kNtCols + n]);
    }
  }
  store_dot_products<MR, NR>(acc, C, ldc, accumulate);
}

using NtTile = void (*)(const float*, int64_t, const float*, const int64_t*, int64_t, float*, int64_t, bool,
                        Segments);
template <int MR, size_t... NR>
constexpr std::array<NtTile, sizeof...(NR)> nt_row(std::index_sequence<NR...>) {
  return {&nt_tile<MR, int(NR) + 1>...};
}
template <size_t... MR>
constexpr std::array<std::array<NtTile, kNtCols>, sizeof...(MR)> nt_rows(std::index_sequence<MR...>) {
  return {nt_row<int(MR) + 1>(std::make_index_sequence<kNtCols>{})...};
}
// kNtTiles[mr-1][nr-1]: full tiles and the ragged edges.
constexpr std::array<std::array<NtTile, kNtCols>, kNtRows> kNtTiles =
    nt_rows(std::make_index_sequence<kNtRows>{});

}  // namespace

int64_t PackedA::panel_rows() { return kRows; }

void PackedA::set_columns(int64_t k0, int64_t count, const float* src, int64_t src_stride) {
  for (int64_t m0 = 0; m0 < rows_; m0 += kRows)  // a panel is the transpose of kRows rows
    transpose(src + m0 * src_stride, std::min<int64_t>(kRows, rows_ - m0), count, src_stride,
              packed_.get() + (m0 * cols_ + k0 * kRows), kRows);
}

void gemm_nn(const PackedA& a, int64_t N, const float* B, const int64_t* row_offsets, float* C, int64_t ldc,
             bool accumulate) {
  nn_tiles(
      a, N,
      [&](int64_t n0, int) {
        return OffsetRows{B + n0, row_offsets};
      },
      C, ldc, accumulate);
}

void gemm_nn_blocks(const PackedA& a, int64_t N, const float* const* blocks, int64_t ldb, float* C,
                    int64_t ldc, bool accumulate) {
  nn_tiles(
      a, N,
      [&](int64_t n0, int vectors) {
        ColumnBlocks source{{}, ldb};  // column c of a row lies in block c/16 at c%16
        for (int v = 0; v < vectors; ++v)
          source.start[v] = blocks[(n0 + kLanes * v) / 16] + (n0 + kLanes * v) % 16;
        for (int v = vectors; v < kVectors; ++v) source.start[v] = source.start[0];
        return source;
      },
      C, ldc, accumulate);
}

void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
             const int64_t* row_offsets, float* C, int64_t ldc, bool accumulate, Segments segments) {
  for (int64_t m0 = 0; m0 < M; m0 += kNtRows) {
    const int64_t mr = std::min<int64_t>(kNtRows, M - m0);
    for (int64_t n0 = 0; n0 < N; n0 += kNtCols) {
      const int64_t nr = std::min<int64_t>(kNtCols, N - n0);
      kNtTiles[size_t(mr - 1)][size_t(nr - 1)](A + m0 * lda, lda, B, row_offsets + n0, K, C + m0 * ldc + n0,
                                               ldc, accumulate, segments);
    }
  }
}

#else  // cblas_sgemm everywhere: B's rows are gathered into a matrix first

int64_t PackedA::panel_rows() { return 1; }

void PackedA::set_columns(int64_t k0, int64_t count, const float* src, int64_t src_stride) {
  for (int64_t m = 0; m < rows_; ++m)
    std::copy_n(src + m * src_stride, count, packed_.get() + (m * cols_ + k0));
}

namespace {
// rows x length floats, row i copied from B + row_offsets[i].
std::vector<float> gather_rows(const float* B, const int64_t* row_offsets, int64_t rows, int64_t length) {
  std::vector<float> dense(size_t(rows * length));
  for (int64_t i = 0; i < rows; ++i) std::copy_n(B + row_offsets[i], length, dense.begin() + i * length);
  return dense;
}
}  // namespace

void gemm_nn(const PackedA& a, int64_t N, const float* B, const int64_t* row_offsets, float* C, int64_t ldc,
             bool accumulate) {
  const std::vector<float> dense = gather_rows(B, row_offsets, a.cols(), N);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(a.rows()), int(N), int(a.cols()), 1.0f,
              a.packed(), int(a.cols()), dense.data(), int(N), accumulate ? 1.0f : 0.0f, C, int(ldc));
}

void gemm_nn_blocks(const PackedA& a, int64_t N, const float* const* blocks, int64_t ldb, float* C,
                    int64_t ldc, bool accumulate) {
  const int64_t K = a.cols();
  std::vector<float> dense(size_t(K * N));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) dense[size_t(k * N + n)] = blocks[n / 16][k * ldb + n % 16];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(a.rows()), int(N), int(K), 1.0f, a.packed(),
              int(K), dense.data(), int(N), accumulate ? 1.0f : 0.0f, C, int(ldc));
}

void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
             const int64_t* row_offsets, float* C, int64_t ldc, bool accumulate, Segments segments) {
  for (int64_t t = 0; t < segments.count; ++t) {
    const std::vector<float> dense = gather_rows(B + t * segments.b_stride, row_offsets, N, K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f,
                A + t * segments.a_stride, int(lda), dense.data(), int(K), accumulate || t > 0 ? 1.0f : 0.0f,
                C, int(ldc));
  }
}

#endif

PackedA::PackedA(int64_t rows, int64_t cols, Uninitialised)
    : rows_(rows),
      cols_(cols),
      panel_(panel_rows()),
      packed_(new float[size_t((rows + panel_ - 1) / panel_ * cols * panel_)]) {}

PackedA::PackedA(const float* data, int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride)
    : PackedA(rows, cols, [&](int64_t m0, int64_t n, float* out) {
        const int64_t panel = panel_rows();
        if (col_stride == 1) return transpose(data + m0 * row_stride, n, cols, row_stride, out, panel);
        for (int64_t k = 0; k < cols; ++k)
          for (int64_t i = 0; i < n; ++i) out[k * panel + i] = data[(m0 + i) * row_stride + k * col_stride];
      }) {}

PackedA::PackedA(int64_t rows, int64_t cols) : PackedA(rows, cols, Uninitialised{}) {
  std::fill_n(packed_.get(), (rows + panel_ - 1) / panel_ * cols * panel_, 0.0f);
}

}  // namespace kindling::cpu
