// PLACEHOLDER: replaced wholesale by the helper that owns this stem.
#include "ops/cpu/cpu_backend.h"

namespace kindling {

void CpuBackend::dropout_mask(const Tensor&, float, uint64_t, uint64_t) {
  throw Error("dropout_mask: not implemented on the CPU yet");
}

}  // namespace kindling
