// Every loss written again from primitive ops (log_softmax, exp, one_hot, mul, sum, ...), with
// autograd deriving the backward. It is the independent check of the fused kernels (the tests
// require equal forward and backward) and the baseline they must beat (losses/loss_bench.h).
#pragma once
#include "core/tensor.h"
#include "losses/loss_desc.h"

namespace kindling {

// logits [N, C] f32, labels [N] i64 in [0, C) -> the mean loss as a 0-dim tensor (NGL: the mean
// over N*C), differentiable in logits. `desc` as Loss::desc(C) resolves it.
Tensor composed_loss(const LossDesc& desc, const Tensor& logits, const Tensor& labels);

}  // namespace kindling
