// What `kindling info` and every benchmark print about the machine: the BLAS the CPU backend uses
// and, when built with CUDA, the runtime, driver, cuDNN and GPUs.
#pragma once
#include <string>
#include <vector>

namespace kindling {

struct BlasInfo {
  std::string config;    // openblas_get_config()
  std::string core;      // the kernel set OpenBLAS chose (honours OPENBLAS_CORETYPE)
  int blas_threads = 0;  // kindling pins this to 1
};
BlasInfo blas_info();

struct CudaInfo {
  bool compiled = false;
  int runtime_version = 0, driver_version = 0;  // 13000 = 13.0
  long cudnn_compiled = 0, cudnn_loaded = 0;    // 90100 = 9.1.0
  long cublas_version = 0;
  std::vector<std::string> gpus;  // "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)"
  std::string error;              // why no GPU was found, if none
};
CudaInfo cuda_info();

// One line for benchmark headers: "cpu: 2 threads, OpenBLAS Haswell; cuda: NVIDIA H100 ..." .
std::string machine_summary();

}  // namespace kindling
