#include "core/backend.h"

#include "ops/cpu/cpu_backend.h"

#include <mutex>

namespace kindling {

Backend& cpu_backend() {
  static auto* instance = new CpuBackend();   // never destroyed: outlives every static tensor
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
