// col2im, the adjoint of lowering one image to a column matrix: the strided data gradient computes
// dcol = Wᵀ·dy as a GEMM (ops/cpu/conv.cpp) and scatters it back onto the image. The column matrix
// has one row per (c, r, s) tap and one column per output pixel, row stride ld.
#pragma once
#include "core/backend.h"

namespace kindling::cpu {

// col [C*R*S, P*Q] (row stride ld) -> dx [C,H,W] (one group's channels of one image), overwritten:
//   dx[c, h, w] = sum_{r,s,p,q : p*sh - ph + r*dh = h, q*sw - pw + s*dw = w} col[(c*R + r)*S + s, p*Q + q]
void col2im(const Conv2dParams& p, int64_t C, const float* col, int64_t ld, float* dx);

}  // namespace kindling::cpu
