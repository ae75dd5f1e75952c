// Dropout with a counter-based mask, so the CPU and CUDA backends draw the same mask from the same
// generator state.
#pragma once
#include "core/rng.h"
#include "core/tensor.h"

namespace kindling {

// Requires: input f32 (any shape, device, strides); 0 <= p <= 1.
// Ensures: not training, or p == 0: returns input itself (no copy, no draw).
//   Otherwise reserves input.numel() counter values from `generator` (first = offset) and returns
//   y = x * mask with mask[i] = u_i >= p ? 1/(1-p) : 0, u_i = bits_to_unit_float(random_bits(
//   generator seed, offset + i)), i in row-major order; p == 1 gives zeros. Differentiable in
//   input: dx = dy * mask.
Tensor dropout(const Tensor& input, double p, bool training, Generator& generator);

}  // namespace kindling
