// Stride-1 3×3 convolutions by Winograd's minimal filtering F(m×m, 3×3), m = 2 or 4 (Lavin &
// Gray 2016): the output is cut into m×m tiles, each computed from an α×α input tile (α = m + 2)
// with α² multiplications per (input, output) channel pair instead of 9m²: 2.25× fewer for
// F(2×2, 3×3), 4× fewer for F(4×4, 3×3). For the α² positions ξ of a tile's transformed domain:
//   U[ξ] [K, C] = (G g Gᵀ)[ξ]        the weights, transformed once per call
//   V[ξ] [C, T] = (Bᵀ d B)[ξ]        every input tile d, T tiles per chunk of images
//   M[ξ] [K, T] = U[ξ] · V[ξ]        α² GEMMs (ops/cpu/conv_gemm.h), depth C
//   y tile      = Aᵀ M A             m×m outputs per tile and output channel
// (the matrices are in winograd_matrices.h). The transforms add a few operations per input and
// output element, and the GEMMs' depth is C instead of 9C, so it pays when both channel counts are
// large enough to keep the register tiles busy. It serves the forward convolution, through the
// flipped weights the stride-1 data gradient, and the weight gradient, which is linear in the
// weights' transform: dw = Gᵀ [Σ over tiles (A dY Aᵀ) ⊙ (Bᵀ d B)] G, summed over tiles by α²
// GEMMs of depth T before one inverse transform.
// Rounding: the transforms' sums round differently from the direct sum. F(2×2, 3×3) stays within
// a few 1e-7 of the output's largest magnitude, F(4×4, 3×3), whose matrices hold 4, 5 and 8,
// within a few 1e-6 (measured on Gaussian data, tests/test_conv.cpp).
#pragma once
#include "core/backend.h"

#include <cstdint>

namespace kindling::cpu {

// KINDLING_WINOGRAD (read at every call): 0 turns Winograd off, 2 or 4 forces that tile where
// Winograd applies; unset, the tile is chosen per convolution.
bool winograd_enabled();

// Which computation a tile is chosen for.
enum class WinogradUse { forward, data_gradient, weight_gradient };

// The tile m: 0 (direct kernels) unless the convolution is 3×3, stride 1, undilated and ungrouped
// with at least 16 input and output channels and an output plane of at least 16 pixels. Then:
//   forward          2. F(4×4, 3×3)'s rounding, though within a few 1e-6 of each layer's largest
//                    output, compounds through the layers where eval-mode BatchNorm subtracts a
//                    running mean close to the outputs and divides by a small deviation: the
//                    PyTorch fixture's eval-mode gradients drift to 3.5e-3 (tests/
//                    test_resnet_fixture.cpp), against 4e-7 with F(2×2, 3×3).
//   data gradient    4 on planes of at least 16×16, else 2 (same fixture: 2e-6).
//   weight gradient  4 on planes of at least 8×8 (its GEMMs' depth is the tiles), else 2.
// On smaller planes F(4×4, 3×3)'s 6×6 input tiles overlap too much to pay. Measured per ResNet
// layer (conv_bench, docs/performance.md). At `--precision bf16` (core/precision.h) always 2: the
// GEMMs round U and V to bf16, and F(4×4, 3×3)'s matrices amplify that rounding about sevenfold
// (tests/test_bf16.cpp). KINDLING_WINOGRAD=4 still forces it.
int64_t winograd_tile(const Conv2dParams& p, WinogradUse use = WinogradUse::forward);
inline bool winograd_applies(const Conv2dParams& p) { return winograd_tile(p) != 0; }

// y [N,K,P,Q] = conv(x [N,C,H,W], w) + bias (bias [K] or null) with tile m (2 or 4; 0: the
// winograd_tile of the forward, or of the data gradient when flipped). w is [K,C,3,3]; when flipped it is
// [C,K,3,3], the weights of the convolution whose data gradient this one computes, read as w'[k,c,r,s] =
// w[c,k,2-r,2-s].
void winograd_conv(const Conv2dParams& p, float* y, const float* x, const float* w, bool flipped,
                   const float* bias, int64_t m = 0);

// dw [K,C,3,3] = sum over n of the correlation of x[n] [C,H,W] with dy[n] [K,P,Q] (overwritten),
// with tile m (0: winograd_tile(p, WinogradUse::weight_gradient)).
void winograd_weight_grad(const Conv2dParams& p, float* dw, const float* x, const float* dy, int64_t m = 0);

}  // namespace kindling::cpu
