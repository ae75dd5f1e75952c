// The optimizers' fused updates (ops/cpu/optim.cpp, ops/cuda/optim.cu): one kernel call updates a
// parameter and its state in place, with the formulas of SgdArgs and AdamWArgs (core/backend.h).
// nn/optim.h builds the optimizers on these.
#pragma once
#include "core/backend.h"
#include "core/tensor.h"

namespace kindling {

// Requires: param, grad and momentum_buffer (undefined when args.momentum is 0) contiguous f32 of
// one shape on one device. Ensures: param and momentum_buffer updated in place, their versions
// bumped (autograd sees the change).
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdArgs& args);

// Requires: param, grad, exp_avg, exp_avg_sq contiguous f32 of one shape on one device.
// Ensures: all but grad updated in place, their versions bumped.
void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const AdamWArgs& args);

}  // namespace kindling
