// PLACEHOLDER: replaced wholesale by the helper that owns this stem.
#include "ops/cpu/cpu_backend.h"

namespace kindling {

void CpuBackend::softmax_fwd(const Tensor&, const Tensor&, bool) {
  throw Error("softmax_fwd: not implemented on the CPU yet");
}

void CpuBackend::softmax_bwd(const Tensor&, const Tensor&, const Tensor&, bool) {
  throw Error("softmax_bwd: not implemented on the CPU yet");
}

void CpuBackend::one_hot(const Tensor&, const Tensor&) {
  throw Error("one_hot: not implemented on the CPU yet");
}

}  // namespace kindling
