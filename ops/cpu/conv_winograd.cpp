// Winograd F(m×m, 3×3) convolution and weight gradient (see conv_winograd.h) over the tile
// transforms of winograd_transforms.h. Per chunk of images, one worker:
//   convolution      V [α²][C][T] from the input tiles, M[ξ] = U[ξ] · V[ξ] (α² gemm_nn of depth
//                    C), the output tiles from M;
//   weight gradient  V from the input tiles, D [α²][K][T] from the output gradient's tiles,
//                    dU[ξ] += D[ξ] · V[ξ]ᵀ (α² GEMMs of depth T) into the worker's partial sum;
//                    the partials are added in worker order, so the result does not depend on
//                    thread timing, and transformed back to dw once.
// At `--precision bf16` the GEMMs are gemm_bf16_nn (U[ξ] rounded and packed once per call, V[ξ]
// rounded as it is packed) and, for the weight gradient, gemm_bf16_nt; the transforms stay fp32.
// From 32 channels in, the weight gradient packs D[ξ] and transposes V[ξ] to [T][C] for gemm_nn
// rather than run gemm_nt's dot products: a chunk has at most a few hundred tiles, and over so
// short a depth the dot-product tiles ran at 35-50 % of the FMA peak against the broadcast tiles'
// 85-98 %, while the transposes read and write each transformed element once more. With 16
// channels the broadcast tile has a single vector of columns and the transposes are not paid back.
#include "ops/cpu/conv_winograd.h"

#include "ops/cpu/conv_gemm.h"
#include "ops/cpu/conv_lowering.h"
#include "ops/cpu/transpose.h"
#include "ops/cpu/winograd_transforms.h"

#include "core/parallel.h"
#include "core/precision.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace kindling::cpu {
namespace {

using namespace winograd;

constexpr int64_t kMinChannels = 16;          // below, the GEMMs' depth C is too shallow to pay
constexpr int64_t kMinOutputPixels = 16;      // 4×4: smaller planes have too few tiles per image
constexpr int64_t kLargeTilePlane = 16;       // the data gradient's F(4×4, 3×3) from 16×16 planes,
constexpr int64_t kLargeTileGradPlane = 8;    // the weight gradient's from 8×8
constexpr int64_t kMinChunkTiles = 128;       // GEMM columns per chunk at least: U[ξ] is reused over them
constexpr int64_t kChunkTiles = 512;          // GEMM columns per chunk at most, as the direct kernels' pixels
constexpr int64_t kMaxChunkFloats = 1 << 18;  // the transformed operands of one chunk: 1 MB, half an L2
constexpr int64_t kMinBroadcastGradChannels = 32;  // the weight gradient's gemm_nn from C = 32 up

// How the batch is cut: images per chunk and the threads used.
struct Chunks {
  int64_t images, workers;
};

// Images per chunk: the α² planes of C + K rows within kMaxChunkFloats and at most kChunkTiles
// tiles, but at least kMinChunkTiles (each U[ξ] must serve enough columns) and no more than a
// worker's share.
Chunks chunks(const Conv2dParams& p, const Geometry& geo) {
  const int64_t threads = num_threads();
  const int64_t floats_per_image = geo.positions * (p.C + p.K) * geo.per_image;
  const int64_t fit = std::min(kChunkTiles / geo.per_image, kMaxChunkFloats / floats_per_image);
  const int64_t least = (kMinChunkTiles + geo.per_image - 1) / geo.per_image;
  return {std::clamp<int64_t>(std::max(fit, least), 1, (p.N + threads - 1) / threads),
          std::min<int64_t>(threads, p.N)};
}

// KINDLING_WINOGRAD's value, "" when unset; read at every call, so that tests compare the paths.
std::string winograd_choice() {
  const char* env = std::getenv("KINDLING_WINOGRAD");
  return env ? env : "";
}

}  // namespace

bool winograd_enabled() { return winograd_choice() != "0"; }

int64_t winograd_tile(const Conv2dParams& p, WinogradUse use) {
  const std::string choice = winograd_choice();
  if (choice == "0") return 0;
  const bool fits = p.R == 3 && p.S == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 &&
                    p.dil_w == 1 && p.groups == 1 && p.C >= kMinChannels && p.K >= kMinChannels &&
                    p.P * p.Q >= kMinOutputPixels;
  if (!fits) return 0;
  if (choice == "2" || choice == "4") return choice == "2" ? 2 : 4;
  if (use == WinogradUse::forward || gemm_precision() == Precision::bf16) return 2;
  const int64_t large = use == WinogradUse::weight_gradient ? kLargeTileGradPlane : kLargeTilePlane;
  return p.P >= large && p.Q >= large ? 4 : 2;
}

void winograd_conv(const Conv2dParams& p, float* y, const float* x, const float* w, bool flipped,
                   const float* bias, int64_t m) {
  if (p.N == 0) return;
  const WinogradUse use = flipped ? WinogradUse::data_gradient : WinogradUse::forward;
  const Geometry geo = geometry(p, m != 0 ? m : winograd_tile(p, use));
  const bool bf16 = gemm_precision() == Precision::bf16;
  const std::vector<PackedA> U = bf16 ? std::vector<PackedA>() : transform_weights(p, geo, w, flipped);
  const std::vector<PackedBf16> U_bf16 =
      bf16 ? transform_weights_bf16(p, geo, w, flipped) : std::vector<PackedBf16>();
  const auto [images, workers] = chunks(p, geo);
  const int64_t max_ld = images * geo.per_image;
  // Per worker: V, M, the input transform's scratch, the output transform's.
  const int64_t v_floats = geo.positions * plane_floats(p.C, max_ld);
  const int64_t m_floats = geo.positions * plane_floats(p.K, max_ld);
  const int64_t scratch_floats = input_scratch_floats(geo);
  const Workspace ws(workers, v_floats + m_floats + scratch_floats + output_scratch_floats(p, geo));
  auto scratch = [&](int64_t worker) { return ws.slice(worker) + v_floats + m_floats; };
  for_each_chunk(
      p.N, workers, images, [&](int64_t worker) { std::fill_n(scratch(worker), scratch_floats, 0.0f); },
      [&](int64_t worker, int64_t n0, int64_t chunk_images) {
        float* V = ws.slice(worker);
        float* M = V + v_floats;
        float* in_scratch = scratch(worker);
        float* out_scratch = in_scratch + scratch_floats;
        const int64_t ld = chunk_images * geo.per_image;
        const int64_t v_plane = plane_floats(p.C, ld), m_plane = plane_floats(p.K, ld);
        for (int64_t b = 0; b < chunk_images; ++b)
          transform_input(p, geo, x + (n0 + b) * p.C * p.H * p.W, V + b * geo.per_image, ld, v_plane,
                          in_scratch);
        const std::vector<int64_t> v_rows = strided_rows(p.C, ld);
        for (int64_t xi = 0; xi < geo.positions; ++xi)
          if (bf16)
            gemm_bf16_nn(U_bf16[size_t(xi)], ld, V + xi * v_plane, ld, M + xi * m_plane, ld, false);
          else
            gemm_nn(U[size_t(xi)], ld, V + xi * v_plane, v_rows.data(), M + xi * m_plane, ld, false);
        for (int64_t b = 0; b < chunk_images; ++b)
          transform_output(p, geo, M + b * geo.per_image, ld, m_plane, y + (n0 + b) * p.K * p.P * p.Q, bias,
                           out_scratch);
      });
}

void winograd_weight_grad(const Conv2dParams& p, float* dw, const float* x, const float* dy, int64_t m) {
  if (p.N == 0) {
    std::fill_n(dw, p.K * p.C * 9, 0.0f);
    return;
  }
  const Geometry geo = geometry(p, m != 0 ? m : winograd_tile(p, WinogradUse::weight_gradient));
  const auto [images, workers] = chunks(p, geo);
  const int64_t max_ld = images * geo.per_image;
  // Per worker: V, D, the partial dU [α²][K][C], the input transform's scratch, the output
  // gradient's, and one V[ξ]ᵀ [T][C] for the broadcast tiles.
  const int64_t v_floats = geo.positions * plane_floats(p.C, max_ld);
  const int64_t d_floats = geo.positions * plane_floats(p.K, max_ld);
  const int64_t du_floats = geo.positions * p.K * p.C;
  const int64_t in_floats = input_scratch_floats(geo), dy_floats = dy_scratch_floats(geo);
  const bool bf16 = gemm_precision() == Precision::bf16;
  const bool broadcast = !bf16 && p.C >= kMinBroadcastGradChannels;
  const int64_t vt_floats = broadcast ? max_ld * p.C : 0;
  const Workspace ws(workers, v_floats + d_floats + du_floats + in_floats + dy_floats + vt_floats);
  auto partial = [&](int64_t worker) { return ws.slice(worker) + v_floats + d_floats; };
  std::vector<char> started(size_t(workers), 0);
  for_each_chunk(
      p.N, workers, images,
      [&](int64_t worker) { std::fill_n(partial(worker) + du_floats, in_floats + dy_floats, 0.0f); },
      [&](int64_t worker, int64_t n0, int64_t chunk_images) {
        float* V = ws.slice(worker);
        float* D = V + v_floats;
        float* in_scratch = partial(worker) + du_floats;
        float* dy_scratch = in_scratch + in_floats;
        float* Vt = dy_scratch + dy_floats;
        const int64_t ld = chunk_images * geo.per_image;
        const int64_t v_plane = plane_floats(p.C, ld), d_plane = plane_floats(p.K, ld);
        for (int64_t b = 0; b < chunk_images; ++b) {
          transform_input(p, geo, x + (n0 + b) * p.C * p.H * p.W, V + b * geo.per_image, ld, v_plane,
                          in_scratch);
          transform_dy(p, geo, dy + (n0 + b) * p.K * p.P * p.Q, D + b * geo.per_image, ld, d_plane,
                       dy_scratch);
        }
        const bool accumulate = started[size_t(worker)] != 0;
        if (bf16) {
          for (int64_t xi = 0; xi < geo.positions; ++xi)
            gemm_bf16_nt(p.K, p.C, ld, D + xi * d_plane, ld, V + xi * v_plane, ld,
                         partial(worker) + xi * p.K * p.C, p.C, accumulate);
        } else if (broadcast) {
          PackedA d_panels(p.K, ld);
          const std::vector<int64_t> vt_rows = strided_rows(ld, p.C);
          for (int64_t xi = 0; xi < geo.positions; ++xi) {
            d_panels.set_columns(0, ld, D + xi * d_plane, ld);
            transpose(V + xi * v_plane, p.C, ld, ld, Vt, p.C);
            gemm_nn(d_panels, p.C, Vt, vt_rows.data(), partial(worker) + xi * p.K * p.C, p.C, accumulate);
          }
        } else {
          const std::vector<int64_t> v_rows = strided_rows(p.C, ld);
          for (int64_t xi = 0; xi < geo.positions; ++xi)
            gemm_nt(p.K, p.C, ld, D + xi * d_plane, ld, V + xi * v_plane, v_rows.data(),
                    partial(worker) + xi * p.K * p.C, p.C, accumulate);
        }
        started[size_t(worker)] = 1;
      });
  float* total = partial(0);
  parallel_for(0, du_floats, 16384, [&](int64_t first, int64_t end) {
    for (int64_t worker = 1; worker < workers; ++worker) {
      const float* add = partial(worker);
      for (int64_t i = first; i < end; ++i) total[i] += add[i];
    }
  });
  weight_grad_from_transformed(p, geo, total, dw);
}

}  // namespace kindling::cpu
