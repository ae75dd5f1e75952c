// CPU GEMM: cblas_sgemm (OpenBLAS pinned to one thread) split over kindling's thread pool, by
// batch when there are enough batches, else by blocks of rows of C. One level of threads only.
// At --precision bf16 (core/precision.h) the products run on ops/cpu/gemm_bf16.h instead.
#include "ops/cpu/cpu_backend.h"

#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/transpose.h"

#include "core/parallel.h"
#include "core/precision.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

namespace kindling {
namespace {

// Below this many multiply-adds per task, splitting costs more than it saves.
constexpr int64_t kMinTaskFlops = int64_t(1) << 18;

// At --precision bf16: alpha * op(A)·op(B) + beta * C on the bf16 kernels, through a scratch
// product where alpha or beta ask for more than "overwrite" or "add".
void bf16_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const bool plain = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  std::vector<float> scratch(plain ? 0 : size_t(M * N));
  float* out = plain ? C : scratch.data();
  const int64_t ld_out = plain ? ldc : N;
  const bool accumulate = plain && beta == 1.0f;
  if (trans_b && !trans_a) {  // B stored [N, K]: rows of A against rows of B
    cpu::gemm_bf16_nt(M, N, K, A, lda, B, ldb, out, ld_out, accumulate);
  } else if (trans_b) {  // both stored transposed: A's rows gathered first
    std::vector<float> a_rows(size_t(M * K));
    cpu::transpose(A, K, M, lda, a_rows.data(), K);
    cpu::gemm_bf16_nt(M, N, K, a_rows.data(), K, B, ldb, out, ld_out, accumulate);
  } else {
    const cpu::StridedMatrix a = trans_a ? cpu::StridedMatrix{A, 1, lda} : cpu::StridedMatrix{A, lda, 1};
    cpu::gemm_bf16_nn(cpu::PackedBf16(a, M, K), N, B, ldb, out, ld_out, accumulate);
  }
  if (plain) return;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float& c = C[i * ldc + j];
      c = alpha * scratch[size_t(i * N + j)] + (beta == 0.0f ? 0.0f : beta * c);
    }
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (gemm_precision() == Precision::bf16)
    return bf16_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(M),
              int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

}  // namespace

// C[b] [M,N] = alpha * op(A[b]) [M,K] · op(B[b]) [K,N] + beta * C[b], row-major; op(X) = Xᵀ when
// trans_x (X then stored as [K,M] / [N,K]); X[b] = X + b * stride_x.
void CpuBackend::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                      int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {  // an empty sum: C = beta * C (BLAS implementations disagree on this edge)
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          float& c = C[b * stride_c + i * ldc + j];
          c = beta == 0.0f ? 0.0f : beta * c;
        }
    return;
  }
  const int threads = num_threads();  // also starts the pool, which pins OpenBLAS to one thread
  const int64_t flops = M * N * std::max<int64_t>(K, 1);
  if (batch >= threads || M < 2 * threads) {
    const int64_t grain = std::max<int64_t>(1, kMinTaskFlops / flops);
    parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
              C + b * stride_c, ldc);
    });
    return;
  }
  // Few large products: split the rows of C. Rows of op(A) start at i*lda, or at column i of the
  // stored [K,M] matrix when A is transposed.
  const int64_t grain = std::max<int64_t>(1, kMinTaskFlops / (N * std::max<int64_t>(K, 1)));
  for (int64_t b = 0; b < batch; ++b) {
    const float* Ab = A + b * stride_a;
    const float* Bb = B + b * stride_b;
    float* Cb = C + b * stride_c;
    parallel_for(0, M, grain, [&](int64_t row_begin, int64_t row_end) {
      const float* A_rows = trans_a ? Ab + row_begin : Ab + row_begin * lda;
      sgemm(trans_a, trans_b, row_end - row_begin, N, K, alpha, A_rows, lda, Bb, ldb, beta,
            Cb + row_begin * ldc, ldc);
    });
  }
}

}  // namespace kindling
