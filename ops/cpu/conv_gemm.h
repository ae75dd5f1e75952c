// The two matrix products a convolution needs, as small single-threaded kernels (the caller's
// threads split the batch). The right operand is given row by row: row k starts at
// B + row_offsets[k], so it can be a plain matrix (offsets k*ld) or the phased padded image itself
// (every tap's row is a shifted window of one phase plane, see conv_lowering.h, and no im2col
// matrix is built).
// Built with AVX-512 or AVX2+FMA (-march=native on a machine that has it, see simd.h) the kernels
// are hand-vectorised register tiles reading B where it lies: OpenBLAS is slow on these shapes
// (M = 16..64 output channels) and would need B gathered into a matrix first. On a machine with
// neither, B is gathered and cblas_sgemm does the work.
#pragma once
#include "core/parallel.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace kindling::cpu {

// Offsets of the rows of a plain row-major matrix: k*ld for k in [0, rows).
std::vector<int64_t> strided_rows(int64_t rows, int64_t ld);

// The left operand of C = A·B, prepared once and reused for many B (a convolution's weights).
// Stored in panels of panel_rows() rows, [ceil(rows/panel_rows)][cols][panel_rows], zero-padded:
// 8-row (AVX-512) or 4-row (AVX2) panels for the vectorised kernels, plain row-major (1-row
// panels) for cblas.
class PackedA {
 public:
  // Zeros, to be filled with set_columns() (positions never written stay 0).
  PackedA(int64_t rows, int64_t cols);
  // A from a panel writer: write_panel(m0, rows, out) sets out[k*panel_rows() + i] = A[m0 + i][k]
  // for i < rows (<= panel_rows()) and every k; a last panel's missing rows are zeroed here.
  // Panels are written over the thread pool (a ResNet-18 step packs 22M weights, forward and
  // flipped: one thread doing it leaves the other idle).
  template <typename WritePanel>
  PackedA(int64_t rows, int64_t cols, WritePanel write_panel) : PackedA(rows, cols, Uninitialised{}) {
    const int64_t panels = (rows_ + panel_ - 1) / panel_;
    parallel_for(0, panels, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, cols_ * panel_)),
                 [&](int64_t first, int64_t end) {
                   for (int64_t m0 = first * panel_; m0 < std::min(end * panel_, rows_); m0 += panel_) {
                     float* out = packed_.get() + m0 * cols_;
                     if (rows_ - m0 < panel_) std::fill_n(out, cols_ * panel_, 0.0f);
                     write_panel(m0, std::min(panel_, rows_ - m0), out);
                   }
                 });
  }
  // A[m][k] = data[m*row_stride + k*col_stride].
  PackedA(const float* data, int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride);
  PackedA(PackedA&&) = default;
  PackedA(const PackedA&) = delete;
  PackedA& operator=(const PackedA&) = delete;

  static int64_t panel_rows();
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  const float* packed() const { return packed_.get(); }
  // A[m][k0 + i] = src[m*src_stride + i] for every row m and i < count.
  void set_columns(int64_t k0, int64_t count, const float* src, int64_t src_stride);

 private:
  struct Uninitialised {};
  PackedA(int64_t rows, int64_t cols, Uninitialised);
  int64_t rows_, cols_, panel_;
  std::unique_ptr<float[]> packed_;  // [ceil(rows/panel)][cols][panel]
};

// C[M,N] = A·B, plus C's old value when accumulate; M = a.rows(), K = a.cols(); row k of B is the
// N floats at B + row_offsets[k]; C row-major with row stride ldc.
void gemm_nn(const PackedA& a, int64_t N, const float* B, const int64_t* row_offsets, float* C, int64_t ldc,
             bool accumulate);

// As gemm_nn, with B's columns in blocks of 16: column 16*j + i of row k is blocks[j][k*ldb + i]
// (N a multiple of 16, or the last block's extra columns unused). The weight gradient of a
// stride-1 convolution in this form reads a channels-last padded image: block (tap, channels
// c..c+15) at the tap's shift, one pixel per row.
void gemm_nn_blocks(const PackedA& a, int64_t N, const float* const* blocks, int64_t ldb, float* C,
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
