// Batch normalisation over the channel dim, as torch.nn.functional.batch_norm.
#pragma once
#include "core/tensor.h"

#include <functional>

namespace kindling {

// Requires: input f32 [N,C,H,W], [N,C,L] or [N,C] (BatchNorm1d), viewed as [N,C,H,W] with H = L or
// H = W = 1; weight, bias undefined (affine off: 1 and 0) or f32 [C]; running_mean and running_var
// both undefined or both f32 [C]; all on one device; in training, more than one value per channel.
// Ensures, with M = N*H*W values per channel:
//   training (or no running stats): mean, var = batch mean and biased variance per channel
//     (accumulated in double on the CPU); y = (x - mean) / sqrt(var + eps) * weight + bias; and, when
//     running stats are given, in place and outside autograd (their version is bumped):
//     running_mean = (1-momentum)*running_mean + momentum*mean,
//     running_var  = (1-momentum)*running_var  + momentum*var*M/(M-1)   (unbiased, as PyTorch).
//   eval: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, each sample on its own
//     (the output does not depend on the rest of the batch).
// Differentiable in input, weight and bias; training mode through the batch statistics.
Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// Batch norm fused with a residual add and a ReLU: relu(add(batch_norm(input, ...), residual)), or
// relu(batch_norm(...)) when residual is undefined, in one pass over the activations each way
// (statistics, then y = max(0, (x - mean)*scale + bias + residual); backward: relu's mask applied
// inside batch norm's two passes). Requires what batch_norm requires, and residual undefined or
// f32 shaped like input on its device. Ensures batch_norm's semantics exactly (running-stat update,
// eval mode, relu's NaN -> 0) and the composition's value with its float arithmetic: the CPU kernels
// give the same bits, the CUDA ones the same up to rounding. Differentiable in input, weight, bias
// and residual (d residual = dy where the output is positive); one autograd node, which saves the
// input, the output and the batch statistics.
Tensor batch_norm_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training,
                       double momentum = 0.1, double eps = 1e-5, const Tensor& residual = Tensor());

// Sums a per-channel tensor (f32 [C] or i64 [1]) in place over the ranks of a data-parallel job.
using SumOverRanks = std::function<void(const Tensor&)>;

// Training-mode batch_norm whose statistics span the global batch of a data-parallel job (sync BN):
// the per-channel sums behind the mean and the variance are summed over the ranks with
// `sum_over_ranks` in forward, and their gradients again in backward, so that every rank computes
// the output and gradients one process would compute on the concatenated batch. Same requirements
// and running-statistics update as batch_norm(training = true), with M the global count; the
// variance is two-pass (mean first, then the sum of squared deviations). With a sum_over_ranks that
// does nothing it equals batch_norm up to rounding.
Tensor sync_batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, double momentum, double eps,
                       const SumOverRanks& sum_over_ranks);

}  // namespace kindling
