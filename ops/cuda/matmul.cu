// CUDA GEMM: cublasSgemmStridedBatched, one call for the whole batch. cuBLAS is column-major; a
// row-major matrix is the column-major view of its transpose, so C = op(A)·op(B) is computed as
// Cᵀ = op(B)ᵀ·op(A)ᵀ: the operands swap places and M and N swap, the transpose flags stay.
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

#include <algorithm>
#include <climits>

namespace kindling {
namespace {

// C[b] [M,N] = beta * C[b] (0 when beta == 0, whatever C held): the K == 0 edge, which BLAS
// implementations treat differently.
__global__ void scale_matrices_kernel(float* C, int64_t M, int64_t N, int64_t ldc, int64_t stride_c,
                                      int64_t batch, float beta) {
  const int64_t total = batch * M * N;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += int64_t(blockDim.x) * gridDim.x) {
    const int64_t b = t / (M * N), i = (t / N) % M, j = t % N;
    float& c = C[b * stride_c + i * ldc + j];
    c = beta == 0.0f ? 0.0f : beta * c;
  }
}

void check_int(const char* what, int64_t value) {
  KINDLING_CHECK(value >= 0 && value <= INT_MAX, ValueError,
                 "gemm on CUDA: {} = {} does not fit cuBLAS's 32-bit int", what, value);
}

}  // namespace

// C[b] [M,N] = alpha * op(A[b]) [M,K] · op(B[b]) [K,N] + beta * C[b], row-major; op(X) = Xᵀ when
// trans_x (X then stored as [K,M] / [N,K]); X[b] = X + b * stride_x.
void CudaBackend::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                       int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {
    constexpr int kBlock = 256;
    scale_matrices_kernel<<<cuda::grid_for(batch * M * N, kBlock), kBlock, 0, cuda::stream()>>>(
        C, M, N, ldc, stride_c, batch, beta);
    KINDLING_CUDA_LAUNCH_CHECK("scale_matrices_kernel");
    return;
  }
  // A leading dimension is irrelevant for a single row, and views may carry any value there;
  // cuBLAS still checks it, so give it the smallest legal one.
  const int64_t a_row_length = trans_a ? M : K, b_row_length = trans_b ? K : N;
  if ((trans_a ? K : M) == 1) lda = std::max(lda, a_row_length);
  if ((trans_b ? N : K) == 1) ldb = std::max(ldb, b_row_length);
  if (M == 1) ldc = std::max(ldc, N);
  check_int("M", M);
  check_int("N", N);
  check_int("K", K);
  check_int("lda", lda);
  check_int("ldb", ldb);
  check_int("ldc", ldc);
  check_int("batch", batch);
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  KINDLING_CUDA_CHECK(cublasSgemmStridedBatched(cuda::cublas(), op_b, op_a, int(N), int(M), int(K), &alpha, B,
                                                int(ldb), stride_b, A, int(lda), stride_a, &beta, C, int(ldc),
                                                stride_c, int(batch)));
}

}  // namespace kindling
