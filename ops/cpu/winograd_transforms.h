// The tile transforms of Winograd's F(2×2, 3×3) (ops/cpu/conv_winograd.h): weights, input tiles
// and output tiles for the convolution, the output gradient's tiles and the inverse weight
// transform for the weight gradient. Each holds one tile (or one channel, for the weights) per
// vector lane (simd.h), or one float on a machine with neither AVX-512 nor AVX2. A transformed
// operand is 16 ξ-planes [rows][ld], a tile's 4×4 positions, `plane` floats apart.
#pragma once
#include "core/backend.h"
#include "ops/cpu/conv_gemm.h"

#include <cstdint>
#include <vector>

namespace kindling::cpu::winograd {

constexpr int64_t kPositions = 16;  // ξ: the 4×4 positions of a transformed tile

// Output tiles and the padded input they read: tile t = ty*TW + tx covers outputs (2ty.., 2tx..)
// and reads padded rows 2ty..2ty+3 and columns 2tx..2tx+3 (padded row u is image row u - pad_h).
struct Geometry {
  int64_t tiles_h, tiles_w, per_image;
  int64_t rows;  // padded rows read: 2*tiles_h + 2
};
Geometry geometry(const Conv2dParams& p);

// Floats per ξ-plane of `rows` rows of ld: whole 4 KB pages plus one cache line, so that the 16
// planes' streams, read or written side by side, fall on 16 different cache sets instead of one,
// and a vector read past a plane's last tile stays inside it.
int64_t plane_floats(int64_t rows, int64_t ld);

// U[ξ] [K, C] = (G g Gᵀ)[ξ] for every filter g = w'[k, c] (3×3), packed for gemm_nn. w is
// [K,C,3,3], or when flipped [C,K,3,3] read as w'[k,c,r,s] = w[c,k,2-r,2-s].
std::vector<PackedA> transform_weights(const Conv2dParams& p, const float* w, bool flipped);

// V[ξ][c][t] = (Bᵀ d B)[ξ] for every tile d of image x [C, H, W]; channel rows ld apart. `scratch`
// holds input_scratch_floats, zeroed before an image's first call of a convolution.
int64_t input_scratch_floats(const Geometry& geo);
void transform_input(const Conv2dParams& p, const Geometry& geo, const float* x, float* V, int64_t ld,
                     int64_t plane, float* scratch);

// y [K, P, Q] = Aᵀ M A (+ bias[k], bias may be null) from M[ξ][k][t]; rows ld apart. `scratch`
// holds output_scratch_floats.
int64_t output_scratch_floats(const Conv2dParams& p, const Geometry& geo);
void transform_output(const Conv2dParams& p, const Geometry& geo, const float* M, int64_t ld, int64_t plane,
                      float* y, const float* bias, float* scratch);

// D[ξ][k][t] = (A dY Aᵀ)[ξ] for every 2×2 tile dY of the output gradient dy [K, P, Q] (outputs
// past P or Q count as 0); rows ld apart. `scratch` holds dy_scratch_floats, zeroed before the
// first call of a convolution.
int64_t dy_scratch_floats(const Geometry& geo);
void transform_dy(const Conv2dParams& p, const Geometry& geo, const float* dy, float* D, int64_t ld,
                  int64_t plane, float* scratch);

// dw [K, C, 3, 3] = Gᵀ dU[k, c] G from dU [16][K][C], the products of D and V summed over tiles.
void weight_grad_from_transformed(const Conv2dParams& p, const float* dU, float* dw);

}  // namespace kindling::cpu::winograd
