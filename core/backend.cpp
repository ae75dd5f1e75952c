#include "core/backend.h"

#include "ops/cpu/reference/reference_backend.h"

#include <cstdlib>
#include <mutex>
#include <string_view>

namespace kindling {

Backend& reference_cpu_backend() {
  static auto* instance = new ReferenceCpuBackend();   // never destroyed, like cpu_backend's
  return *instance;
}

namespace {
// KINDLING_KERNELS: "fast" (the default) or "reference" (ops/cpu/reference, for a whole run).
Backend* make_cpu_backend() {
  const char* env = std::getenv("KINDLING_KERNELS");
  const std::string_view kernels = env ? env : "fast";
  if (kernels == "reference") return &reference_cpu_backend();
  if (kernels != "fast")
    throw ValueError(fmt::format("KINDLING_KERNELS={}: expected fast or reference", kernels));
  return new CpuBackend();   // never destroyed: outlives every static tensor
}
}  // namespace

Backend& cpu_backend() {
  static Backend* instance = make_cpu_backend();
  return *instance;
}

namespace {
struct CudaDiscovery {
  Backend* backend = nullptr;
  std::string why_not;
};

const CudaDiscovery& cuda_discovery() {
  static const CudaDiscovery discovery = [] {
    CudaDiscovery found;
    found.backend = make_cuda_backend_if_available(found.why_not);
    return found;
  }();
  return discovery;
}
}  // namespace

bool cuda_required() {
  const char* value = std::getenv("KINDLING_REQUIRE_CUDA");
  return value != nullptr && std::string_view(value) != "" && std::string_view(value) != "0";
}

std::string cuda_unavailable_reason() { return cuda_discovery().why_not; }

bool cuda_available() {
  const CudaDiscovery& discovery = cuda_discovery();
  if (discovery.backend == nullptr && cuda_required())
    throw DeviceError(
        fmt::format("KINDLING_REQUIRE_CUDA is set but CUDA is unavailable: {}", discovery.why_not));
  return discovery.backend != nullptr;
}

Backend& backend(Device device) {
  if (device.is_cpu()) return cpu_backend();
  const CudaDiscovery& discovery = cuda_discovery();
  if (!discovery.backend) {
#ifdef KINDLING_WITH_CUDA
    throw DeviceError(fmt::format("device {} requested, but no CUDA GPU is available: {}", device.str(),
                                  discovery.why_not));
#else
    throw DeviceError(fmt::format(
        "device {} requested, but kindling was built without CUDA (configure with -DKINDLING_CUDA=ON)",
        device.str()));
#endif
  }
  return *discovery.backend;
}

#ifndef KINDLING_WITH_CUDA
Backend* make_cuda_backend_if_available(std::string& why_not) {
  why_not = "built without CUDA (configure with -DKINDLING_CUDA=ON)";
  return nullptr;
}
int cuda_device_count() { return 0; }
#endif

}  // namespace kindling
