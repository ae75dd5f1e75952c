// PLACEHOLDER: replaced wholesale by the helper that owns this stem.
#include "ops/cpu/cpu_backend.h"

namespace kindling {

void CpuBackend::sgd_step(const Tensor&, const Tensor&, const Tensor&, const SgdArgs&) {
  throw Error("sgd_step: not implemented on the CPU yet");
}

void CpuBackend::adamw_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AdamWArgs&) {
  throw Error("adamw_step: not implemented on the CPU yet");
}

}  // namespace kindling
