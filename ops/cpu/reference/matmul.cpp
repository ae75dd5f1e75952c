// Reference GEMM: three loops.
#include "ops/cpu/reference/reference_backend.h"

namespace kindling {

// op(A[b]) [M,K], op(B[b]) [K,N], C[b] [M,N], row-major with leading dimensions lda, ldb, ldc:
//   C[b][i,j] = alpha * sum_k op(A)[i,k] * op(B)[k,j] + beta * C[b][i,j]   (C not read when beta = 0)
void ReferenceCpuBackend::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                               const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                               int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                               int64_t batch) {
  for (int64_t b = 0; b < batch; ++b) {
    const float* a = A + b * stride_a;
    const float* bm = B + b * stride_b;
    float* c = C + b * stride_c;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) {
          const float a_ik = trans_a ? a[k * lda + i] : a[i * lda + k];
          const float b_kj = trans_b ? bm[j * ldb + k] : bm[k * ldb + j];
          sum += double(a_ik) * b_kj;
        }
        const double old = beta == 0.0f ? 0.0 : double(beta) * c[i * ldc + j];
        c[i * ldc + j] = float(alpha * sum + old);
      }
  }
}

}  // namespace kindling
