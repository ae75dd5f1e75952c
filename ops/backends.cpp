// Registers the backends of this layer with core (core/backend.h) while the program starts: the
// CPU backend, fast or reference kernels as KINDLING_KERNELS says, and in a CUDA build the CUDA
// backend, made when first asked for. Core knows none of them by name.
#include "core/backend.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/reference/reference_backend.h"
#ifdef KINDLING_WITH_CUDA
#include "ops/cuda/cuda_backend.h"
#endif

#include <cstdlib>
#include <string_view>

namespace kindling {

Backend& reference_cpu_backend() {
  static auto* instance = new ReferenceCpuBackend();  // never destroyed, like the fast one
  return *instance;
}

namespace {

// KINDLING_KERNELS: "fast" (the default) or "reference" (ops/cpu/reference, for a whole run).
Backend* make_cpu_backend(std::string& /*why_not*/) {
  const char* env = std::getenv("KINDLING_KERNELS");
  const std::string_view kernels = env ? env : "fast";
  if (kernels == "reference") return &reference_cpu_backend();
  if (kernels != "fast")
    throw ValueError(fmt::format("KINDLING_KERNELS={}: expected fast or reference", kernels));
  return new CpuBackend();
}

int one_cpu() { return 1; }

bool register_backends() {
  register_backend(DeviceType::CPU, {make_cpu_backend, one_cpu});
#ifdef KINDLING_WITH_CUDA
  register_backend(DeviceType::CUDA, {cuda::make_backend_if_available, cuda::device_count});
#endif
  return true;
}

}  // namespace
}  // namespace kindling

// A static library only contributes the objects a program references, and nothing references
// this one: the ops library's link interface names this symbol (-Wl,--undefined), which pulls the
// object, and with it the registration, into every program that links kindling.
extern "C" {
extern const bool kindling_backends_registered;
const bool kindling_backends_registered = kindling::register_backends();
}
