// PLACEHOLDER: replaced wholesale by the helper that owns this stem.
#include "ops/cpu/cpu_backend.h"

namespace kindling {

void CpuBackend::batch_norm_fwd_train(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, float, float) {
  throw Error("batch_norm_fwd_train: not implemented on the CPU yet");
}

void CpuBackend::batch_norm_fwd_eval(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, float) {
  throw Error("batch_norm_fwd_eval: not implemented on the CPU yet");
}

void CpuBackend::batch_norm_bwd(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  throw Error("batch_norm_bwd: not implemented on the CPU yet");
}

}  // namespace kindling
