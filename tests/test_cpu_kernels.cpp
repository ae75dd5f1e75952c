// The CPU convolution's building blocks against plain loops, at ragged sizes: every tile edge of
// whichever kernels this build compiled (AVX-512, AVX2 or the BLAS fallback, see ops/cpu/simd.h)
// and depths past one gemm_nn pass.
#include "ops/cpu/conv_gemm.h"
#include "ops/cpu/transpose.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

using namespace kindling;

namespace {

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(n);
  for (float& v : values) v = uniform(rng);
  return values;
}

// C values must match a double-precision reference to float accuracy for a K-term dot product.
void check_close(const std::vector<float>& got, const std::vector<double>& want, int64_t K) {
  REQUIRE(got.size() == want.size());
  const double tolerance = 1e-5 * double(K) + 1e-5;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::abs(double(got[i]) - want[i]) > tolerance) {
      FAIL("element " << i << ": " << got[i] << " vs " << want[i]);
      return;
    }
}

// Offsets of count rows stride apart, the last row first: a B that no plain matrix describes.
std::vector<int64_t> reversed_rows(int64_t count, int64_t stride) {
  std::vector<int64_t> offsets(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) offsets[size_t(i)] = (count - 1 - i) * stride;
  return offsets;
}

const int64_t kRaggedSizes[] = {1, 3, 4, 5, 8, 9, 16, 17, 23, 24, 25, 33, 49};

}  // namespace

TEST_CASE("cpu::transpose matches the plain loop at every ragged block size, with strides") {
  for (int64_t rows : kRaggedSizes)
    for (int64_t cols : kRaggedSizes) {
      const int64_t src_stride = cols + 3, dst_stride = rows + 5;
      const std::vector<float> src = random_floats(size_t(rows * src_stride), unsigned(rows * 100 + cols));
      std::vector<float> dst(size_t(cols * dst_stride), -7.0f);
      cpu::transpose(src.data(), rows, cols, src_stride, dst.data(), dst_stride);
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t i = 0; i < dst_stride; ++i) {
          const float want = i < rows ? src[size_t(i * src_stride + j)] : -7.0f;  // the gap is untouched
          if (dst[size_t(j * dst_stride + i)] != want)
            FAIL("rows " << rows << ", cols " << cols << ": dst[" << j << "][" << i << "]");
        }
    }
}

TEST_CASE("cpu::gemm_nn: C (+)= A·B with B given by row offsets, ragged M and N, depth past one pass") {
  for (int64_t M : {1, 3, 4, 5, 8, 9, 17})
    for (int64_t N : {1, 7, 8, 9, 24, 25, 47, 48, 49, 100})
      for (int64_t K : {1, 5, 37, 1000})
        for (bool accumulate : {false, true}) {
          CAPTURE(M);
          CAPTURE(N);
          CAPTURE(K);
          CAPTURE(accumulate);
          const std::vector<float> A = random_floats(size_t(M * K), 1);
          const int64_t ldb = N + 4;
          const std::vector<float> B = random_floats(size_t(K * ldb), 2);
          const std::vector<int64_t> offsets = reversed_rows(K, ldb);
          const int64_t ldc = N + 2;
          std::vector<float> C = random_floats(size_t(M * ldc), 3);
          std::vector<double> want(C.begin(), C.end());
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double dot = 0;
              for (int64_t k = 0; k < K; ++k)
                dot += double(A[size_t(m * K + k)]) * B[size_t(offsets[size_t(k)] + n)];
              want[size_t(m * ldc + n)] = (accumulate ? want[size_t(m * ldc + n)] : 0.0) + dot;
            }
          const cpu::PackedA packed(A.data(), M, K, K, 1);
          cpu::gemm_nn(packed, N, B.data(), offsets.data(), C.data(), ldc, accumulate);
          check_close(C, want, K);
        }
}

TEST_CASE("cpu::gemm_nn_blocks reads B's columns in blocks of 16, from a PackedA filled by columns") {
  for (int64_t M : {1, 4, 9, 16})
    for (int64_t blocks_count : {1, 2, 3, 4, 7})
      for (int64_t K : {3, 900}) {
        const int64_t N = 16 * blocks_count - (blocks_count % 2) * 5;  // ragged last block sometimes
        CAPTURE(M);
        CAPTURE(N);
        CAPTURE(K);
        const std::vector<float> A = random_floats(size_t(M * K), 4);
        cpu::PackedA packed(M, K);
        packed.set_columns(0, K / 2, A.data(), K);  // two column ranges, as the conv fills it
        packed.set_columns(K / 2, K - K / 2, A.data() + K / 2, K);
        const int64_t ldb = 20;  // each block: K rows of 16 columns, 20 floats apart
        std::vector<std::vector<float>> storage;
        std::vector<const float*> blocks;
        for (int64_t j = 0; j < blocks_count; ++j) {
          storage.push_back(random_floats(size_t(K * ldb), unsigned(10 + j)));
          blocks.push_back(storage.back().data());
        }
        std::vector<float> C(size_t(M * N));
        std::vector<double> want(C.size());
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n)
            for (int64_t k = 0; k < K; ++k)
              want[size_t(m * N + n)] +=
                  double(A[size_t(m * K + k)]) * blocks[size_t(n / 16)][k * ldb + n % 16];
        cpu::gemm_nn_blocks(packed, N, blocks.data(), ldb, C.data(), N, /*accumulate=*/false);
        check_close(C, want, K);
      }
}

TEST_CASE("cpu::gemm_nt: C (+)= sum over segments of A_t·B_tᵀ, ragged tiles and K tails") {
  for (int64_t M : {1, 2, 3, 4, 5, 7, 16})
    for (int64_t N : {1, 3, 4, 5, 10})
      for (int64_t K : {1, 7, 8, 16, 17, 100})
        for (int64_t segments : {1, 3}) {
          CAPTURE(M);
          CAPTURE(N);
          CAPTURE(K);
          CAPTURE(segments);
          const int64_t lda = K + 1, a_stride = M * lda + 2;
          const int64_t b_stride = N * (K + 3) + 1;
          const std::vector<float> A = random_floats(size_t(segments * a_stride), 5);
          const std::vector<float> B = random_floats(size_t(segments * b_stride), 6);
          const std::vector<int64_t> offsets = reversed_rows(N, K + 3);
          const int64_t ldc = N + 1;
          std::vector<float> C = random_floats(size_t(M * ldc), 7);
          std::vector<double> want(C.begin(), C.end());
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double dot = 0;
              for (int64_t t = 0; t < segments; ++t)
                for (int64_t k = 0; k < K; ++k)
                  dot += double(A[size_t(t * a_stride + m * lda + k)]) *
                         B[size_t(t * b_stride + offsets[size_t(n)] + k)];
              want[size_t(m * ldc + n)] += dot;
            }
          cpu::gemm_nt(M, N, K, A.data(), lda, B.data(), offsets.data(), C.data(), ldc, /*accumulate=*/true,
                       {segments, a_stride, b_stride});
          check_close(C, want, K * segments);
        }
}
