// The CUDA backend object and its context: device discovery, the one stream and the library
// handles, error reporting, and registration with core (make_cuda_backend_if_available). A binary
// built with CUDA runs CPU-only on a machine without a GPU or driver: discovery then finds no device.
#include "core/backend.h"
#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

#include "losses/loss_checks.h"
#include "ops/cuda/loss_launch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace kindling {
namespace cuda {
namespace {

// "ops/cuda/conv.cu" rather than the build machine's absolute path.
const char* repo_relative(const char* file) {
  const char* ops = std::strstr(file, "ops/cuda/");
  return ops ? ops : file;
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
  static auto* instance = new Context();   // never destroyed: the driver may be gone at exit
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

void CudaBackend::synchronize() { KINDLING_CUDA_CHECK(cudaStreamSynchronize(cuda::stream())); }

// logits [N,C], labels [N] -> row_loss [N], grad [N,C] (may be undefined): the generic loss kernel of
// ops/cuda/loss.cu (the losses' own file) on our stream. It flags the first row with a non-finite
// logit; reading that flag back waits for the kernel, as the CPU twin's check does.
// The labels are range-checked on the host before the kernel indexes with them; the kernel writes
// the row losses (into `out` itself for reduction none), and the reduce kernel makes the scalar.
void CudaBackend::loss_rows(const LossDesc& loss, const Tensor& out, const Tensor& grad,
                            const Tensor& logits, const Tensor& labels) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const std::vector<int64_t> host_labels = labels.to_vector<int64_t>();
  for (int64_t n = 0; n < N; ++n)
    if (host_labels[size_t(n)] < 0 || host_labels[size_t(n)] >= C)
      throw_label_out_of_range(loss.kind, n, host_labels[size_t(n)], logits);
  const Tensor dense_labels = labels.contiguous();
  const bool per_row = loss.reduction == Reduction::none;
  const Tensor row_loss = per_row ? out : empty({N}, TensorOptions{}.with_device(out.device()));
  const float grad_scale = loss.reduction == Reduction::mean ? float(1.0 / double(N)) : 1.0f;
  cuda::DeviceBuffer bad_row(sizeof(int));
  KINDLING_CUDA_CHECK(launch_loss_rows(loss, row_loss.data<float>(), grad.defined() ? grad.data<float>() : nullptr,
                                       logits.data<float>(), dense_labels.data<int64_t>(), N, C, grad_scale,
                                       bad_row.as<int>(), cuda::stream()));
  int first_bad_row = 0;
  cuda::download(&first_bad_row, bad_row.get(), sizeof(int));
  if (first_bad_row < N) {
    const std::vector<float> row = logits.select(0, first_bad_row).to_vector<float>();
    throw_non_finite_logit(loss.kind, first_bad_row, row.data(), C);
  }
  if (!per_row) reduce(loss.reduction == Reduction::mean ? ReduceOp::Mean : ReduceOp::Sum, out, row_loss, 1, N, 1);
}

namespace {
// "cudaErrorNoDevice (no CUDA-capable device is detected)"
std::string cuda_error_text(cudaError_t status) {
  return fmt::format("{} ({})", cudaGetErrorName(status), cudaGetErrorString(status));
}
}  // namespace

int cuda_device_count() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaSuccess) return count;
  (void)cudaGetLastError();   // clear the error so that later calls start clean
  int driver_version = 0;
  // No driver library at all (a CPU machine) and a driver that sees no device are plain absences.
  if (status == cudaErrorNoDevice || cudaDriverGetVersion(&driver_version) != cudaSuccess || driver_version == 0)
    return 0;
  int runtime_version = 0;
  (void)cudaRuntimeGetVersion(&runtime_version);
  throw DeviceError(fmt::format("CUDA: cudaGetDeviceCount failed: {}; driver supports CUDA {}.{}, kindling was "
                                "built with CUDA runtime {}.{}",
                                cuda_error_text(status), driver_version / 1000, driver_version % 1000 / 10,
                                runtime_version / 1000, runtime_version % 1000 / 10));
}

Backend* make_cuda_backend_if_available(std::string& why_not) {
  try {
    if (cuda_device_count() == 0) {
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

}  // namespace kindling
