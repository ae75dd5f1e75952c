// Stride-1 3×3 convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016): the
// output is cut into 2×2 tiles, each computed from a 4×4 input tile with 16 multiplications per
// (input, output) channel pair instead of 36, 2.25× fewer. For the 16 positions ξ of a tile's
// transformed domain:
//   U[ξ] [K, C] = (G g Gᵀ)[ξ]        the weights, transformed once per call
//   V[ξ] [C, T] = (Bᵀ d B)[ξ]        every input tile d, T tiles per chunk of images
//   M[ξ] [K, T] = U[ξ] · V[ξ]        16 GEMMs (ops/cpu/conv_gemm.h), depth C
//   y tile      = Aᵀ M A             2×2 outputs per tile and output channel
// with Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],
// Aᵀ = [1 1 1 0; 0 1 -1 -1]. The transforms add a few additions per input and output element,
// and the GEMMs' depth is C instead of 9C, so it pays when both channel counts are large enough
// to keep the register tiles busy. It serves the forward convolution, through the flipped
// weights the stride-1 data gradient, and the weight gradient, which is linear in the weights'
// transform: dw = Gᵀ [Σ over tiles (A dY Aᵀ) ⊙ (Bᵀ d B)] G, summed over tiles by 16 GEMMs of
// depth T (the tiles) before one inverse transform. Rounding differs from the direct sum by a few units in
// the last place of the largest term (the transforms' additions), well inside the tests' 1e-5 of the output's
// largest magnitude.
#pragma once
#include "core/backend.h"

namespace kindling::cpu {

// False when KINDLING_WINOGRAD=0 (read at every call).
bool winograd_enabled();

// True when enabled, for a 3×3, stride-1, undilated, ungrouped convolution with at least 16 input
// and output channels and an output plane of at least 64 pixels.
bool winograd_applies(const Conv2dParams& p);

// y [N,K,P,Q] = conv(x [N,C,H,W], w) + bias (bias [K] or null). w is [K,C,3,3]; when flipped it is
// [C,K,3,3], the weights of the convolution whose data gradient this one computes, read as
// w'[k,c,r,s] = w[c,k,2-r,2-s].
void winograd_conv(const Conv2dParams& p, float* y, const float* x, const float* w, bool flipped,
                   const float* bias);

// dw [K,C,3,3] = sum over n of the correlation of x[n] [C,H,W] with dy[n] [K,P,Q] (overwritten).
void winograd_weight_grad(const Conv2dParams& p, float* dw, const float* x, const float* dy);

}  // namespace kindling::cpu
