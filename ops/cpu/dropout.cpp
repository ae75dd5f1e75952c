// CPU dropout mask: each element hashes its own counter, so any split over threads (or over CUDA
// threads) gives the same mask.
#include "ops/cpu/cpu_backend.h"

#include "core/parallel.h"
#include "core/rng.h"

namespace kindling {

// mask [numel] contiguous f32: mask[i] = bits_to_unit_float(random_bits(seed, offset + i)) >= p
// ? 1/(1-p) : 0  (all zeros when p == 1).
void CpuBackend::dropout_mask(const Tensor& mask, float p, uint64_t seed, uint64_t offset) {
  float* out = mask.data<float>();
  const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  parallel_for(0, mask.numel(), 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = bits_to_unit_float(random_bits(seed, offset + uint64_t(i))) >= p ? keep_scale : 0.0f;
  });
}

}  // namespace kindling
