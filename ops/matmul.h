// Matrix products on Backend::gemm. Operands that are transposed views (x.t(), w.transpose(1,2))
// are passed to gemm with a transpose flag instead of being copied; other non-contiguous operands
// are copied once.
#pragma once
#include "core/tensor.h"

namespace kindling {

// Requires: f32 operands on one device, either
//   a [M,K] · b [K,N]        -> [M,N]
//   a [B,M,K] · b [B,K,N]    -> [B,M,N]
//   a [B,M,K] · b [K,N]      -> [B,M,N]   (b shared by every batch)
//   a [M,K] · b [B,K,N]      -> [B,M,N]   (a shared by every batch)
// ShapeError naming both shapes when the inner sizes or batches differ.
// Ensures: a fresh contiguous f32 result; differentiable in both operands.
Tensor matmul(const Tensor& a, const Tensor& b);

// Requires: x [N,in] f32, weight [out,in], bias undefined or [out], one device.
// Ensures: y [N,out] = x · weightᵀ + bias (bias written first, then one gemm accumulates into it);
// differentiable in x, weight and bias.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace kindling
