// The errors of the loss kernels' input checks, worded once for every backend (defined in
// losses/loss.cpp). The kernels find the first bad row in the same pass that computes the loss.
#pragma once
#include "core/tensor.h"
#include "losses/loss_desc.h"

#include <cstdint>
#include <string>

namespace kindling {

// ValueError "loss focal: labels[1] = 4 is outside [0, 4) for logits f32[3,4] on cpu".
[[noreturn]] void throw_label_out_of_range(LossKind kind, int64_t row, int64_t label, const Tensor& logits);
// The same, for logits of C classes described as `logits_description` (Tensor::describe()'s words).
[[noreturn]] void throw_label_out_of_range(LossKind kind, int64_t row, int64_t label, int64_t C,
                                           const std::string& logits_description);
// ValueError "loss focal: logits row 1 holds a non-finite value (nan at column 2)", for the first
// non-finite entry of `values`, row `row` of the logits [C] copied to the host.
[[noreturn]] void throw_non_finite_logit(LossKind kind, int64_t row, const float* values, int64_t C);
// The same, for the non-finite `value` already found at `column`.
[[noreturn]] void throw_non_finite_logit_at(LossKind kind, int64_t row, int64_t column, float value);

}  // namespace kindling
