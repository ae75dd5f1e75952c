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
Backend* cuda_backend_instance() {
  static Backend* instance = make_cuda_backend_if_available();
  return instance;
}
}  // namespace

bool cuda_available() { return cuda_backend_instance() != nullptr; }

Backend& backend(Device device) {
  if (device.is_cpu()) return cpu_backend();
  Backend* cuda = cuda_backend_instance();
  if (!cuda) {
#ifdef KINDLING_WITH_CUDA
    throw DeviceError(fmt::format("device {} requested, but no CUDA GPU is available", device.str()));
#else
    throw DeviceError(fmt::format(
        "device {} requested, but kindling was built without CUDA (configure with -DKINDLING_CUDA=ON)",
        device.str()));
#endif
  }
  return *cuda;
}

#ifndef KINDLING_WITH_CUDA
Backend* make_cuda_backend_if_available() { return nullptr; }
int cuda_device_count() { return 0; }
#endif

}  // namespace kindling
