// The errors of the loss kernels' input checks, worded once for every backend (defined in
// losses/loss.cpp). The kernels find the first bad row in the same pass that computes the loss.
#pragma once
#include "core/tensor.h"
#include "losses/loss_desc.h"

#include <cstdint>

namespace kindling {

// ValueError "loss focal: labels[1] = 4 is outside [0, 4) for logits f32[3,4] on cpu".
[[noreturn]] void throw_label_out_of_range(LossKind kind, int64_t row, int64_t label,
                                           const Tensor& logits);
// ValueError "loss focal: logits row 1 holds a non-finite value (nan at column 2)", for the first
// non-finite entry of `values`, row `row` of the logits [C] copied to the host.
[[noreturn]] void throw_non_finite_logit(LossKind kind, int64_t row, const float* values, int64_t C);

}  // namespace kindling
