// CUDA dropout mask from the counter-based generator of core/rng.h: element i draws
// random_bits(seed, offset + i), exactly as the CPU does, so both devices drop the same elements.
#include "core/rng.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

namespace kindling {
namespace {

// mask [numel] f32 contiguous; mask[i] = u_i >= p ? 1/(1-p) : 0 (all zeros when p == 1),
// u_i = bits_to_unit_float(random_bits(seed, offset + i))
__global__ void dropout_mask_kernel(float* mask, int64_t n, float p, float keep_scale, uint64_t seed,
                                    uint64_t offset) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    mask[i] = bits_to_unit_float(random_bits(seed, offset + uint64_t(i))) >= p ? keep_scale : 0.0f;
}

}  // namespace

void CudaBackend::dropout_mask(const Tensor& mask, float p, uint64_t seed, uint64_t offset) {
  KINDLING_CHECK(mask.dtype() == DType::f32 && mask.is_contiguous(), DTypeError,
                 "dropout_mask on CUDA: expected a contiguous f32 mask, got {}", mask.describe());
  const int64_t n = mask.numel();
  if (n == 0) return;
  constexpr int kBlock = 256;
  const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  dropout_mask_kernel<<<cuda::grid_for(n, kBlock), kBlock, 0, cuda::stream()>>>(mask.data<float>(), n, p,
                                                                                keep_scale, seed, offset);
  KINDLING_CUDA_LAUNCH_CHECK("dropout_mask_kernel");
}

}  // namespace kindling
