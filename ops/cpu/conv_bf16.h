// Convolutions at `--precision bf16` (core/precision.h): per image, the im2col matrix and the bf16
// GEMMs of gemm_bf16.h, images spread over the thread pool. Per group g:
//   forward      y[n]_g [Kg, PQ] = bf16(W_g) [Kg, CRS] · bf16(col(x[n]_g)) [CRS, PQ] + bias
//   data grad    dcol [CRS, PQ] = bf16(W_g)ᵀ · bf16(dy[n]_g),  dx[n]_g = col2im(dcol)
//   weight grad  dW_g [Kg, CRS] = Σ_n bf16(dy[n]_g) · bf16(col(x[n]_g))ᵀ, per worker, the workers'
//                partial sums added in worker order (the result does not depend on timing)
// Products are summed in fp32. The convolutions where Winograd applies do not come here: they run
// F(2×2, 3×3) on bf16 tile GEMMs (conv_winograd.h).
#pragma once
#include "core/backend.h"

namespace kindling::cpu {

void conv_bf16_forward(const Conv2dParams& p, float* y, const float* x, const float* w, const float* bias);
void conv_bf16_data_grad(const Conv2dParams& p, float* dx, const float* dy, const float* w);
void conv_bf16_weight_grad(const Conv2dParams& p, float* dw, const float* x, const float* dy);

}  // namespace kindling::cpu
