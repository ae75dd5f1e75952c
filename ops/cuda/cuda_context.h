// The CUDA side's shared state and error checks: one device (cuda:0), one stream, one cuBLAS and one
// cuDNN handle bound to that stream. Every kernel of ops/cuda/ (and the loss kernel) launches on
// cuda::stream(), so work is ordered without events and the caching allocator may hand a freed block
// to the next kernel at once. Every CUDA, cuBLAS and cuDNN call goes through KINDLING_CUDA_CHECK, whose
// DeviceError names the call, the file and line, and the library's error name.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>

namespace kindling::cuda {

[[noreturn]] void throw_call_error(const char* call, const char* file, int line, const char* error_name,
                                   const char* error_text);

inline void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess)
    throw_call_error(call, file, line, cudaGetErrorName(status), cudaGetErrorString(status));
}
inline void check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw_call_error(call, file, line, cublasGetStatusName(status), cublasGetStatusString(status));
}
inline void check(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status != CUDNN_STATUS_SUCCESS)
    throw_call_error(call, file, line, "cudnnStatus_t", cudnnGetErrorString(status));
}

// The stream, handles and device facts, created on first use (cudaSetDevice(0) first).
cudaStream_t stream();
cublasHandle_t cublas();
cudnnHandle_t cudnn();  // created lazily: loading cuDNN costs time that CPU-only work need not pay
int num_sms();

// Errors that kernels only flag, so that the call that launched them does not wait for the GPU (a
// label outside [0, C) or a non-finite logit that the loss kernel finds, losses/cuda/loss.cu). The
// layer that launches such kernels adds a check that throws its first flagged error, naming the row
// and value; raise_deferred_errors runs every check after each synchronisation
// (CudaBackend::synchronize, copy_to_host).
void add_deferred_error_check(void (*check)());
void raise_deferred_errors();

// KINDLING_DETERMINISTIC=1: only deterministic cuDNN algorithms. (Our own kernels never use atomics,
// so they are deterministic either way.)
bool deterministic();
// KINDLING_ALLOW_TF32=1: let cuDNN use TF32 tensor cores for f32 convolutions (faster, ~1e-3
// relative error). Off by default so CUDA results match the CPU to f32 rounding.
bool allow_tf32();

// Blocks for a grid-stride loop over n items: enough to fill every SM, never more than the items need.
inline unsigned grid_for(int64_t n, int block) {
  const int64_t needed = (n + block - 1) / block;
  const int64_t enough = int64_t(num_sms()) * (2048 / block) * 4;
  return unsigned(std::max<int64_t>(1, std::min(needed, enough)));
}

}  // namespace kindling::cuda

// KINDLING_CUDA_CHECK(cudaMemcpyAsync(...)) throws DeviceError naming the call when it fails.
#define KINDLING_CUDA_CHECK(call) ::kindling::cuda::check((call), #call, __FILE__, __LINE__)
// After a kernel launch: reports a bad launch configuration at once, naming the kernel.
#define KINDLING_CUDA_LAUNCH_CHECK(kernel_name) \
  ::kindling::cuda::check(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)
