// The tile transforms of Winograd's F(m×m, 3×3), m = 2 or 4 (ops/cpu/conv_winograd.h): weights,
// input tiles and output tiles for the convolution, the output gradient's tiles and the inverse
// weight transform for the weight gradient. An output tile is m×m, its input tile α×α with
// α = m + 2; a transformed operand is α² ξ-planes [rows][ld], `plane` floats apart, one per
// position of the α×α transformed tile. The transforms hold one tile (or one channel, for the
// weights) per vector lane (simd.h), or one float on a machine with neither AVX-512 nor AVX2.
#pragma once
#include "core/backend.h"
#include "ops/cpu/conv_gemm.h"
#include "ops/cpu/gemm_bf16.h"

#include <cstdint>
#include <vector>

namespace kindling::cpu::winograd {

// Output tiles and the padded input they read: tile t = ty*TW + tx covers outputs (m*ty.., m*tx..)
// and reads padded rows m*ty..m*ty+α-1 and the same columns (padded row u is image row u - pad_h).
struct Geometry {
  int64_t m, alpha, positions;  // tile, input tile, α²
  int64_t tiles_h, tiles_w, per_image;
  int64_t rows;  // padded rows read: m*tiles_h + 2
};
Geometry geometry(const Conv2dParams& p, int64_t m);

// Floats per ξ-plane of `rows` rows of ld: whole 4 KB pages plus one cache line, so that the
// planes' streams, read or written side by side, fall on different cache sets instead of one,
// and a vector read past a plane's last tile stays inside it.
int64_t plane_floats(int64_t rows, int64_t ld);

// U[ξ] [K, C] = (G g Gᵀ)[ξ] for every filter g = w'[k, c] (3×3), packed for gemm_nn. w is
// [K,C,3,3], or when flipped [C,K,3,3] read as w'[k,c,r,s] = w[c,k,2-r,2-s].
std::vector<PackedA> transform_weights(const Conv2dParams& p, const Geometry& geo, const float* w,
                                       bool flipped);
// The same rounded to bf16 and packed for gemm_bf16_nn (`--precision bf16`).
std::vector<PackedBf16> transform_weights_bf16(const Conv2dParams& p, const Geometry& geo, const float* w,
                                               bool flipped);

// V[ξ][c][t] = (Bᵀ d B)[ξ] for every tile d of image x [C, H, W]; channel rows ld apart. `scratch`
// holds input_scratch_floats, zeroed before the first image of a convolution.
int64_t input_scratch_floats(const Geometry& geo);
void transform_input(const Conv2dParams& p, const Geometry& geo, const float* x, float* V, int64_t ld,
                     int64_t plane, float* scratch);

// y [K, P, Q] = Aᵀ M A (+ bias[k], bias may be null) from M[ξ][k][t]; rows ld apart. `scratch`
// holds output_scratch_floats.
int64_t output_scratch_floats(const Conv2dParams& p, const Geometry& geo);
void transform_output(const Conv2dParams& p, const Geometry& geo, const float* M, int64_t ld, int64_t plane,
                      float* y, const float* bias, float* scratch);

// D[ξ][k][t] = (A dY Aᵀ)[ξ] for every m×m tile dY of the output gradient dy [K, P, Q] (outputs
// past P or Q count as 0); rows ld apart. `scratch` holds dy_scratch_floats, zeroed before the
// first image of a convolution.
int64_t dy_scratch_floats(const Geometry& geo);
void transform_dy(const Conv2dParams& p, const Geometry& geo, const float* dy, float* D, int64_t ld,
                  int64_t plane, float* scratch);

// dw [K, C, 3, 3] = Gᵀ dU[k, c] G from dU [α²][K][C], the products of D and V summed over tiles.
void weight_grad_from_transformed(const Conv2dParams& p, const Geometry& geo, const float* dU, float* dw);

}  // namespace kindling::cpu::winograd
