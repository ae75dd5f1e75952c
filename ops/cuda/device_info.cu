// CUDA half of ops/device_info.h: runtime, driver, cuDNN and cuBLAS versions and the GPUs found.
// Every call is checked; on a machine without a GPU the answer says why instead of failing.
#include "ops/device_info.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <fmt/format.h>

namespace kindling {

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = true;
  info.cudnn_compiled = CUDNN_VERSION;
  info.cudnn_loaded = long(cudnnGetVersion());
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    info.error = fmt::format("no GPU ({})", cudaGetErrorString(status));
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return info;
  }
  if (count == 0) info.error = "no GPU";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    info.gpus.push_back(
        fmt::format("{} (sm_{}{}, {} GiB)", prop.name, prop.major, prop.minor, prop.totalGlobalMem >> 30));
  }
  cublasHandle_t handle = nullptr;
  if (count > 0 && cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS) {
    int version = 0;
    cublasGetVersion(handle, &version);
    info.cublas_version = version;
    cublasDestroy(handle);
  }
  return info;
}

}  // namespace kindling
