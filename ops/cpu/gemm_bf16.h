// The GEMMs of `--precision bf16` (core/precision.h): operands rounded to bfloat16, products
// summed in fp32, on the vdpbf16ps instruction of CPUs with AVX512-BF16 (and AVX512-BW). The
// operands are fp32 and are rounded as they are packed: tensors, master weights and everything
// outside the GEMMs stay fp32. vdpbf16ps multiplies pairs along the depth, so both kernels work on
// pairs (k, k+1) of bf16 held in one 32-bit word, the depth padded with a zero to an even length:
//   gemm_bf16_nn   C = A·B, B row-major [K, N]: 8×48 register tiles, a pair of A broadcast
//                  against 48 columns of B's pairs (the convolution and its data gradient,
//                  and Winograd's U[ξ]·V[ξ]);
//   gemm_bf16_nt   C = A·Bᵀ, A [M, K] and B [N, K] row-major: 4×4 tiles of dot products along
//                  rows converted to bf16 in place order (the weight gradient, whose depth is
//                  the pixels, or Winograd's tiles).
// All are single-threaded: callers split the work over their threads. They throw DeviceError on a
// CPU without AVX512-BF16 (cpu_has_avx512_bf16() in core/precision.h).
#pragma once
#include <cstdint>
#include <memory>

namespace kindling::cpu {

// A(m, k) = data[m*row_stride + k*col_stride]: a transposed operand is a swap of strides.
struct StridedMatrix {
  const float* data;
  int64_t row_stride, col_stride;
  float at(int64_t row, int64_t col) const { return data[row * row_stride + col * col_stride]; }
};

// bfloat16 bits of x as vcvtneps2bf16 makes them: rounded to nearest, ties to even; zeros and
// denormals become a zero of x's sign; a NaN stays a quiet NaN; an overflow becomes ±inf.
uint16_t to_bf16(float x);
float from_bf16(uint16_t bits);
inline float round_to_bf16(float x) { return from_bf16(to_bf16(x)); }

// The left operand of gemm_bf16_nn, rounded and packed once for many B (a convolution's weights):
// panels of 8 rows, [panels][pairs][8] words, zero past M and K.
class PackedBf16 {
 public:
  PackedBf16(StridedMatrix a, int64_t rows, int64_t cols);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t pairs() const { return (cols_ + 1) / 2; }
  const uint32_t* panel(int64_t index) const { return words_.get() + index * pairs() * 8; }

 private:
  int64_t rows_, cols_;
  std::unique_ptr<uint32_t[]> words_;
};

// C[M,N] (row stride ldc) = A·B, plus C's old value when accumulate; M = a.rows(), K = a.cols(),
// B [K, N] row-major with row stride ldb.
void gemm_bf16_nn(const PackedBf16& a, int64_t N, const float* B, int64_t ldb, float* C, int64_t ldc,
                  bool accumulate);

// C[M,N] (row stride ldc) = A·Bᵀ, plus C's old value when accumulate; A [M, K] and B [N, K]
// row-major with row strides lda and ldb.
void gemm_bf16_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float* C, int64_t ldc, bool accumulate);

}  // namespace kindling::cpu
