// The CUDA backend object and its context: device discovery, the one stream and the library
// handles, error reporting, and the provider that ops/backends.cpp registers with core. A binary
// built with CUDA runs CPU-only on a machine without a GPU or driver: discovery then finds no device.
#include "core/backend.h"
#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

namespace kindling {
namespace cuda {
namespace {

// "ops/cuda/conv.cu" rather than the build machine's absolute path.
const char* repo_relative(const char* file) {
  for (const char* folder : {"ops/cuda/", "losses/cuda/"})
    if (const char* found = std::strstr(file, folder)) return found;
  return file;
}

bool env_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  std::once_flag cudnn_once;
  int num_sms = 1;

  Context() {
    KINDLING_CUDA_CHECK(cudaSetDevice(0));
    KINDLING_CUDA_CHECK(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, 0));
    // Non-blocking: the legacy default stream, which other libraries may use, does not serialise us.
    KINDLING_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    KINDLING_CUDA_CHECK(cublasCreate(&cublas));
    KINDLING_CUDA_CHECK(cublasSetStream(cublas, stream));
    // Plain f32 GEMMs (no TF32), so CUDA matches the CPU to rounding.
    KINDLING_CUDA_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));
  }
};

Context& context() {
  static auto* instance = new Context();  // never destroyed: the driver may be gone at exit
  return *instance;
}

}  // namespace

[[noreturn]] void throw_call_error(const char* call, const char* file, int line, const char* error_name,
                                   const char* error_text) {
  throw DeviceError(fmt::format("CUDA: {} failed at {}:{}: {} ({})", call, repo_relative(file), line,
                                error_name, error_text));
}

cudaStream_t stream() { return context().stream; }
cublasHandle_t cublas() { return context().cublas; }
int num_sms() { return context().num_sms; }

cudnnHandle_t cudnn() {
  Context& ctx = context();
  std::call_once(ctx.cudnn_once, [&] {
    KINDLING_CUDA_CHECK(cudnnCreate(&ctx.cudnn));
    KINDLING_CUDA_CHECK(cudnnSetStream(ctx.cudnn, ctx.stream));
  });
  return ctx.cudnn;
}

bool deterministic() { return env_flag("KINDLING_DETERMINISTIC"); }
bool allow_tf32() { return env_flag("KINDLING_ALLOW_TF32"); }

}  // namespace cuda

CudaBackend::CudaBackend() { (void)cuda::context(); }

Allocator& CudaBackend::allocator() { return cuda::device_allocator(); }

std::string CudaBackend::name() const {
  cudaDeviceProp prop{};
  KINDLING_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  return fmt::format("cuda:0 ({}, sm_{}{}, {} SMs, {:.1f} GiB)", prop.name, prop.major, prop.minor,
                     prop.multiProcessorCount, double(prop.totalGlobalMem) / double(1ull << 30));
}

void CudaBackend::synchronize() {
  KINDLING_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  cuda::raise_deferred_errors();
}

namespace cuda {
namespace {
std::mutex deferred_checks_mutex;
std::vector<void (*)()> deferred_checks;
}  // namespace

void add_deferred_error_check(void (*check)()) {
  const std::lock_guard<std::mutex> lock(deferred_checks_mutex);
  deferred_checks.push_back(check);
}

void raise_deferred_errors() {
  std::vector<void (*)()> checks;
  {
    const std::lock_guard<std::mutex> lock(deferred_checks_mutex);
    checks = deferred_checks;
  }
  for (void (*check)() : checks) check();
}
}  // namespace cuda

namespace {
// "cudaErrorNoDevice (no CUDA-capable device is detected)"
std::string cuda_error_text(cudaError_t status) {
  return fmt::format("{} ({})", cudaGetErrorName(status), cudaGetErrorString(status));
}
}  // namespace

namespace cuda {

int device_count() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaSuccess) return count;
  (void)cudaGetLastError();  // clear the error so that later calls start clean
  int driver_version = 0;
  // No driver library at all (a CPU machine) and a driver that sees no device are plain absences.
  const bool no_driver = cudaDriverGetVersion(&driver_version) != cudaSuccess || driver_version == 0;
  if (status == cudaErrorNoDevice || no_driver) return 0;
  int runtime_version = 0;
  (void)cudaRuntimeGetVersion(&runtime_version);
  throw DeviceError(
      fmt::format("CUDA: cudaGetDeviceCount failed: {}; driver supports CUDA {}.{}, kindling "
                  "was built with CUDA runtime {}.{}",
                  cuda_error_text(status), driver_version / 1000, driver_version % 1000 / 10,
                  runtime_version / 1000, runtime_version % 1000 / 10));
}

Backend* make_backend_if_available(std::string& why_not) {
  try {
    if (device_count() == 0) {
      int count = 0, driver_version = 0;
      const cudaError_t status = cudaGetDeviceCount(&count);
      (void)cudaGetLastError();
      (void)cudaDriverGetVersion(&driver_version);
      why_not = driver_version == 0 ? fmt::format("no CUDA driver is installed ({})", cuda_error_text(status))
                : status == cudaSuccess ? "no CUDA device (cudaGetDeviceCount reports 0)"
                                        : fmt::format("no CUDA device ({})", cuda_error_text(status));
      return nullptr;
    }
    return new CudaBackend();
  } catch (const Error& e) {
    // A driver or device that is there but fails is worth a line even when no one asked for CUDA.
    why_not = e.what();
    std::fprintf(stderr, "kindling: CUDA is present but unusable; using the CPU only: %s\n", e.what());
    return nullptr;
  }
}

}  // namespace cuda

}  // namespace kindling
