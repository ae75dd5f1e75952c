// The fused loss kernels, one per device, side by side: losses/cpu/loss.cpp and losses/cuda/loss.cu.
// Both run the per-row maths of losses/loss_rows.h for the loss that `loss` describes.
//
// logits [N,C] contiguous f32, labels [N] i64 (any stride), on one device -> out f32: the [N] row
// losses for loss.reduction none, else a scalar [] holding their mean or sum; grad [N,C] f32 (may be
// undefined) = d(sum of out)/d(logits), i.e. row n's gradient divided by N for the mean. Throws
// ValueError naming the row and value for a label outside [0, C) (before any logit error, as if the
// labels were checked first) and for a non-finite logit. The CUDA kernel's error is thrown at the
// device's next synchronisation (synchronize, copy_to_host: reading the loss), so that the call does
// not wait for the GPU; the bad rows' losses are NaN until then.
#pragma once
#include "core/tensor.h"
#include "losses/loss_desc.h"

namespace kindling {

// The kernel of the tensors' device.
void loss_rows(const LossDesc& loss, const Tensor& out, const Tensor& grad, const Tensor& logits,
               const Tensor& labels);

namespace cpu {
void loss_rows(const LossDesc& loss, const Tensor& out, const Tensor& grad, const Tensor& logits,
               const Tensor& labels);
}  // namespace cpu

#ifdef KINDLING_WITH_CUDA
namespace cuda {
void loss_rows(const LossDesc& loss, const Tensor& out, const Tensor& grad, const Tensor& logits,
               const Tensor& labels);
}  // namespace cuda
#endif

}  // namespace kindling
