// im2col and its adjoint col2im for one image and one group of channels: they turn a convolution
// into a GEMM (ops/cpu/conv.cpp). The column matrix has one row per (c, r, s) tap and one column
// per output pixel; `ld` is its row stride, so several images can sit side by side in one matrix
// (image b at column offset b*P*Q) and share one GEMM.
#pragma once
#include "core/backend.h"

namespace kindling::cpu {

// x [C,H,W] (C channels of one group) -> col [C*R*S, P*Q] (row stride ld):
//   col[(c*R + r)*S + s, p*Q + q] = x[c, p*sh - ph + r*dh, q*sw - pw + s*dw], 0 outside the image.
void im2col(const Conv2dParams& p, int64_t C, const float* x, float* col, int64_t ld);

// The adjoint: dx [C,H,W] = sum over taps of col scattered back (dx is overwritten, not added to):
//   dx[c, h, w] = sum_{r,s,p,q : p*sh - ph + r*dh = h, q*sw - pw + s*dw = w} col[(c*R + r)*S + s, p*Q + q]
void col2im(const Conv2dParams& p, int64_t C, const float* col, int64_t ld, float* dx);

}  // namespace kindling::cpu
