// bf16 convolutions (see conv_bf16.h): im2col per chunk of images, the chunk's column matrices
// side by side (at least kChunkColumns columns, so that 8×8 and 4×4 planes still fill the GEMM
// tiles and give the weight gradient a deep sum), then gemm_bf16_nn for the convolution and its
// data gradient, gemm_bf16_nt for the weight gradient.
#include "ops/cpu/conv_bf16.h"

#include "ops/cpu/conv_lowering.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/im2col.h"

#include "core/parallel.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace kindling::cpu {
namespace {

constexpr int64_t kChunkColumns = 512;  // pixels per GEMM at least, as the fp32 kernels' chunks

struct Plan {
  int64_t Cg, Kg, CRS, PQ, HW;
  int64_t workers, images;  // images per chunk: whole planes up to kChunkColumns, within a worker's share
};

Plan plan_of(const Conv2dParams& p) {
  const int64_t Cg = p.C / p.groups, PQ = p.P * p.Q;
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(num_threads(), p.N));
  const int64_t share = (p.N + workers - 1) / workers;
  const int64_t images = std::clamp<int64_t>((kChunkColumns + PQ - 1) / std::max<int64_t>(PQ, 1), 1, share);
  return {Cg, p.K / p.groups, Cg * p.R * p.S, PQ, p.H * p.W, workers, images};
}

// Rows k of group g of images n0.. of t [N, channels, PQ] side by side: out[k][b*PQ + i].
void gather_rows(const float* t, int64_t channels, int64_t first_channel, int64_t rows, int64_t PQ,
                 int64_t n0, int64_t images, float* out) {
  const int64_t ld = images * PQ;
  for (int64_t b = 0; b < images; ++b)
    for (int64_t k = 0; k < rows; ++k)
      std::memcpy(out + k * ld + b * PQ, t + ((n0 + b) * channels + first_channel + k) * PQ,
                  size_t(PQ) * sizeof(float));
}

// The weights per group, rounded and packed: W_g [Kg, CRS], or W_gᵀ [CRS, Kg] when transposed.
std::vector<PackedBf16> pack_weights(const Conv2dParams& p, const Plan& s, const float* w, bool transposed) {
  std::vector<PackedBf16> packed;
  for (int64_t g = 0; g < p.groups; ++g) {
    const float* wg = w + g * s.Kg * s.CRS;
    if (transposed)
      packed.emplace_back(StridedMatrix{wg, 1, s.CRS}, s.CRS, s.Kg);
    else
      packed.emplace_back(StridedMatrix{wg, s.CRS, 1}, s.Kg, s.CRS);
  }
  return packed;
}

// Where a worker's scratch ends: columns [CRS, max ld] and rows [Kg, max ld]; what a caller
// needs besides (a partial dW) follows at slice(worker) + extra_at(s).
int64_t extra_at(const Plan& s) { return (s.CRS + s.Kg) * s.images * s.PQ; }

// fn(worker, n0, images, ld, columns, rows) for every chunk of images n0.. (ld = images*PQ) with
// that worker's scratch.
template <typename Fn>
void for_each_image_chunk(const Conv2dParams& p, const Plan& s, const Workspace& ws, Fn&& fn) {
  for_each_chunk(
      p.N, s.workers, s.images, [](int64_t) {},
      [&](int64_t worker, int64_t n0, int64_t images) {
        float* columns = ws.slice(worker);
        fn(worker, n0, images, images * s.PQ, columns, columns + s.CRS * s.images * s.PQ);
      });
}

}  // namespace

void conv_bf16_forward(const Conv2dParams& p, float* y, const float* x, const float* w, const float* bias) {
  if (p.N == 0) return;
  const Plan s = plan_of(p);
  const std::vector<PackedBf16> weights = pack_weights(p, s, w, false);
  const Workspace ws(s.workers, extra_at(s));
  auto chunk = [&](int64_t, int64_t n0, int64_t images, int64_t ld, float* col, float* product) {
    for (int64_t g = 0; g < p.groups; ++g) {
      for (int64_t b = 0; b < images; ++b)
        im2col(p, s.Cg, x + ((n0 + b) * p.C + g * s.Cg) * s.HW, col + b * s.PQ, ld);
      gemm_bf16_nn(weights[size_t(g)], ld, col, ld, product, ld, false);
      for (int64_t b = 0; b < images; ++b)
        for (int64_t k = 0; k < s.Kg; ++k) {
          const float v = bias ? bias[g * s.Kg + k] : 0.0f;
          const float* src = product + k * ld + b * s.PQ;
          float* dst = y + ((n0 + b) * p.K + g * s.Kg + k) * s.PQ;
          for (int64_t i = 0; i < s.PQ; ++i) dst[i] = src[i] + v;
        }
    }
  };
  for_each_image_chunk(p, s, ws, chunk);
}

void conv_bf16_data_grad(const Conv2dParams& p, float* dx, const float* dy, const float* w) {
  if (p.N == 0) return;
  const Plan s = plan_of(p);
  const std::vector<PackedBf16> transposed = pack_weights(p, s, w, true);
  const Workspace ws(s.workers, extra_at(s));
  auto chunk = [&](int64_t, int64_t n0, int64_t images, int64_t ld, float* dcol, float* rows) {
    for (int64_t g = 0; g < p.groups; ++g) {
      gather_rows(dy, p.K, g * s.Kg, s.Kg, s.PQ, n0, images, rows);
      gemm_bf16_nn(transposed[size_t(g)], ld, rows, ld, dcol, ld, false);
      for (int64_t b = 0; b < images; ++b)
        col2im(p, s.Cg, dcol + b * s.PQ, ld, dx + ((n0 + b) * p.C + g * s.Cg) * s.HW);
    }
  };
  for_each_image_chunk(p, s, ws, chunk);
}

void conv_bf16_weight_grad(const Conv2dParams& p, float* dw, const float* x, const float* dy) {
  const Plan s = plan_of(p);
  const int64_t dw_floats = p.K * s.CRS;
  if (p.N == 0) {
    std::fill_n(dw, dw_floats, 0.0f);
    return;
  }
  const Workspace ws(s.workers, extra_at(s) + dw_floats);  // + the worker's partial dW
  std::vector<char> started(size_t(s.workers), 0);
  auto chunk = [&](int64_t worker, int64_t n0, int64_t images, int64_t ld, float* col, float* rows) {
    float* partial = ws.slice(worker) + extra_at(s);
    for (int64_t g = 0; g < p.groups; ++g) {
      for (int64_t b = 0; b < images; ++b)
        im2col(p, s.Cg, x + ((n0 + b) * p.C + g * s.Cg) * s.HW, col + b * s.PQ, ld);
      gather_rows(dy, p.K, g * s.Kg, s.Kg, s.PQ, n0, images, rows);
      gemm_bf16_nt(s.Kg, s.CRS, ld, rows, ld, col, ld, partial + g * s.Kg * s.CRS, s.CRS,
                   started[size_t(worker)] != 0);
    }
    started[size_t(worker)] = 1;
  };
  for_each_image_chunk(p, s, ws, chunk);
  parallel_for(0, dw_floats, 16384, [&](int64_t first, int64_t end) {
    for (int64_t i = first; i < end; ++i) {
      float sum = 0.0f;
      for (int64_t worker = 0; worker < s.workers; ++worker) sum += ws.slice(worker)[extra_at(s) + i];
      dw[i] = sum;
    }
  });
}

}  // namespace kindling::cpu
