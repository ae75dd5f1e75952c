// The two matrix products a convolution needs, as small single-threaded kernels (the caller's
// threads split the batch). The right operand is given row by row: row k starts at
// B + row_offsets[k], so it can be an im2col matrix (offsets k*ld) or, for stride-1 convolutions,
// the zero-padded image itself (offsets c*Hp*Wp + r*dil*Wp + s*dil: every tap's row is a shifted
// window of the padded image, and no im2col matrix is built).
// Built with AVX-512 (-march=native on a machine that has it) the kernels are hand-vectorised
// register tiles reading B where it lies, about twice as fast as OpenBLAS's AVX2 kernels on the
// ResNet shapes; elsewhere B is gathered into a matrix and cblas_sgemm does the work.
#pragma once
#include <cstdint>
#include <vector>

namespace kindling::cpu {

// True when the hand-vectorised kernels are compiled in (else every call is cblas_sgemm).
bool conv_gemm_is_vectorised();

// Offsets of the rows of a plain row-major matrix: k*ld for k in [0, rows).
std::vector<int64_t> strided_rows(int64_t rows, int64_t ld);

// The left operand of C = A·B, prepared once and reused for many B (a convolution's weights):
// A[m][k] = data[m*row_stride + k*col_stride], rows x cols.
class PackedA {
 public:
  PackedA(const float* data, int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride);
  PackedA(PackedA&&) = default;
  PackedA(const PackedA&) = delete;
  PackedA& operator=(const PackedA&) = delete;
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Vectorised: panels of 8 rows, [ceil(rows/8)][cols][8], zero-padded. cblas: row-major [rows][cols].
  const float* packed() const { return packed_.data(); }

 private:
  int64_t rows_, cols_;
  std::vector<float> packed_;
};

// C[M,N] = A·B, plus C's old value when accumulate; M = a.rows(), K = a.cols(); row k of B is the
// N floats at B + row_offsets[k]; C row-major with row stride ldc.
void gemm_nn(const PackedA& a, int64_t N, const float* B, const int64_t* row_offsets, float* C,
             int64_t ldc, bool accumulate);

// C[M,N] = sum over segments t of A_t·B_tᵀ, plus C's old value when accumulate: the weight
// gradient dy·colᵀ summed over a chunk of images, image t being segment t. A_t [M,K] is row-major
// at A + t*a_segment with row stride lda; row n of B_t is the K floats at
// B + t*b_segment + row_offsets[n].
struct Segments {
  int64_t count = 1;
  int64_t a_stride = 0, b_stride = 0;
};
void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
             const int64_t* row_offsets, float* C, int64_t ldc, bool accumulate, Segments segments = {});

}  // namespace kindling::cpu
