#include "ops/device_info.h"

#include "core/parallel.h"

#include <cblas.h>
#include <fmt/format.h>

namespace kindling {

BlasInfo blas_info() {
  BlasInfo info;
  info.config = openblas_get_config();
  info.core = openblas_get_corename();
  num_threads();  // makes sure the pool (which pins OpenBLAS to one thread) exists
  info.blas_threads = openblas_get_num_threads();
  return info;
}

#ifndef KINDLING_WITH_CUDA
CudaInfo cuda_info() {
  CudaInfo info;
  info.error = "built without CUDA";
  return info;
}
#endif

std::string machine_summary() {
  const BlasInfo blas = blas_info();
  std::string line = fmt::format("cpu: {} threads, OpenBLAS core {}", num_threads(), blas.core);
  const CudaInfo cuda = cuda_info();
  if (!cuda.gpus.empty()) line += "; cuda: " + cuda.gpus.front();
  return line;
}

}  // namespace kindling
