// PLACEHOLDER: replaced wholesale by the helper that owns this stem.
#include "ops/cpu/cpu_backend.h"

namespace kindling {

void CpuBackend::max_pool2d_fwd(const Pool2dParams&, const Tensor&, const Tensor&, const Tensor&) {
  throw Error("max_pool2d_fwd: not implemented on the CPU yet");
}

void CpuBackend::max_pool2d_bwd(const Pool2dParams&, const Tensor&, const Tensor&, const Tensor&) {
  throw Error("max_pool2d_bwd: not implemented on the CPU yet");
}

void CpuBackend::avg_pool2d_fwd(const Pool2dParams&, const Tensor&, const Tensor&) {
  throw Error("avg_pool2d_fwd: not implemented on the CPU yet");
}

void CpuBackend::avg_pool2d_bwd(const Pool2dParams&, const Tensor&, const Tensor&) {
  throw Error("avg_pool2d_bwd: not implemented on the CPU yet");
}

}  // namespace kindling
