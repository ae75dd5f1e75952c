// 2-D convolution, NCHW, as PyTorch's torch.nn.functional.conv2d (cross-correlation).
#pragma once
#include "core/backend.h"
#include "core/tensor.h"
#include "ops/size2.h"

namespace kindling {

// Requires: input f32 [N,C,H,W]; weight f32 [K, C/groups, R, S]; bias undefined or f32 [K]; all on
// one device; groups >= 1 dividing C and K; stride, dilation >= 1; padding >= 0; the dilated
// window must fit the padded input.
// Ensures: y [N,K,P,Q] with P = (H + 2*pad_h - dil_h*(R-1) - 1)/stride_h + 1 (likewise Q),
//   y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*C/groups + c, p*sh - ph + r*dh, q*sw - pw + s*dw]
//                                     * w[k, c, r, s],   g = k / (K/groups), zero outside x;
// differentiable in input, weight and bias.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, Size2 stride = 1,
              Size2 padding = 0, Size2 dilation = 1, int64_t groups = 1);

// The kernel geometry conv2d would use; ShapeError (naming the tensors) when they do not fit.
Conv2dParams conv2d_params(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride,
                           Size2 padding, Size2 dilation, int64_t groups);

// Multiply-adds times two of one forward convolution (backward costs twice this).
double conv2d_flops(const Conv2dParams& p);

}  // namespace kindling
