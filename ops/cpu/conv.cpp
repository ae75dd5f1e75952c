// PLACEHOLDER: replaced wholesale by the helper that owns this stem.
#include "ops/cpu/cpu_backend.h"

namespace kindling {

void CpuBackend::conv2d_fwd(const Conv2dParams&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  throw Error("conv2d_fwd: not implemented on the CPU yet");
}

void CpuBackend::conv2d_bwd_data(const Conv2dParams&, const Tensor&, const Tensor&, const Tensor&) {
  throw Error("conv2d_bwd_data: not implemented on the CPU yet");
}

void CpuBackend::conv2d_bwd_weight(const Conv2dParams&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  throw Error("conv2d_bwd_weight: not implemented on the CPU yet");
}

}  // namespace kindling
