// bf16 convolutions (see conv_bf16.h): im2col per image and group, then gemm_bf16_nn for the
// convolution and its data gradient, gemm_bf16_nt for the weight gradient.
#include "ops/cpu/conv_bf16.h"

#include "ops/cpu/conv_lowering.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/im2col.h"

#include "core/parallel.h"

#include <algorithm>
#include <vector>

namespace kindling::cpu {
namespace {

struct Shape {
  int64_t Cg, Kg, CRS, PQ, HW, workers;
};

Shape shape_of(const Conv2dParams& p) {
  const int64_t Cg = p.C / p.groups;
  return {Cg, p.K / p.groups, Cg * p.R * p.S, p.P * p.Q, p.H * p.W, std::min<int64_t>(num_threads(), p.N)};
}

}  // namespace

void conv_bf16_forward(const Conv2dParams& p, float* y, const float* x, const float* w, const float* bias) {
  if (p.N == 0) return;
  const Shape s = shape_of(p);
  std::vector<PackedBf16> weights;  // W_g [Kg, CRS]
  for (int64_t g = 0; g < p.groups; ++g)
    weights.emplace_back(StridedMatrix{w + g * s.Kg * s.CRS, s.CRS, 1}, s.Kg, s.CRS);
  const Workspace ws(s.workers, s.CRS * s.PQ);
  for_each_chunk(
      p.N, s.workers, 1, [](int64_t) {},
      [&](int64_t worker, int64_t n, int64_t) {
        float* col = ws.slice(worker);
        for (int64_t g = 0; g < p.groups; ++g) {
          im2col(p, s.Cg, x + (n * p.C + g * s.Cg) * s.HW, col, s.PQ);
          float* yg = y + (n * p.K + g * s.Kg) * s.PQ;
          gemm_bf16_nn(weights[size_t(g)], s.PQ, col, s.PQ, yg, s.PQ, false);
          if (bias)
            for (int64_t k = 0; k < s.Kg; ++k)
              for (int64_t i = 0; i < s.PQ; ++i) yg[k * s.PQ + i] += bias[g * s.Kg + k];
        }
      });
}

void conv_bf16_data_grad(const Conv2dParams& p, float* dx, const float* dy, const float* w) {
  if (p.N == 0) return;
  const Shape s = shape_of(p);
  std::vector<PackedBf16> transposed;  // W_gᵀ [CRS, Kg]
  for (int64_t g = 0; g < p.groups; ++g)
    transposed.emplace_back(StridedMatrix{w + g * s.Kg * s.CRS, 1, s.CRS}, s.CRS, s.Kg);
  const Workspace ws(s.workers, s.CRS * s.PQ);
  for_each_chunk(
      p.N, s.workers, 1, [](int64_t) {},
      [&](int64_t worker, int64_t n, int64_t) {
        float* dcol = ws.slice(worker);
        for (int64_t g = 0; g < p.groups; ++g) {
          gemm_bf16_nn(transposed[size_t(g)], s.PQ, dy + (n * p.K + g * s.Kg) * s.PQ, s.PQ, dcol, s.PQ,
                       false);
          col2im(p, s.Cg, dcol, s.PQ, dx + (n * p.C + g * s.Cg) * s.HW);
        }
      });
}

void conv_bf16_weight_grad(const Conv2dParams& p, float* dw, const float* x, const float* dy) {
  const Shape s = shape_of(p);
  const int64_t dw_floats = p.K * s.CRS;
  if (p.N == 0) {
    std::fill_n(dw, dw_floats, 0.0f);
    return;
  }
  const Workspace ws(s.workers, s.CRS * s.PQ + dw_floats);  // per worker: col, then its partial dW
  std::vector<char> started(size_t(s.workers), 0);
  for_each_chunk(
      p.N, s.workers, 1, [](int64_t) {},
      [&](int64_t worker, int64_t n, int64_t) {
        float* col = ws.slice(worker);
        float* partial = col + s.CRS * s.PQ;
        for (int64_t g = 0; g < p.groups; ++g) {
          im2col(p, s.Cg, x + (n * p.C + g * s.Cg) * s.HW, col, s.PQ);
          gemm_bf16_nt(s.Kg, s.CRS, s.PQ, dy + (n * p.K + g * s.Kg) * s.PQ, s.PQ, col, s.PQ,
                       partial + g * s.Kg * s.CRS, s.CRS, started[size_t(worker)] != 0);
        }
        started[size_t(worker)] = 1;
      });
  parallel_for(0, dw_floats, 16384, [&](int64_t first, int64_t end) {
    for (int64_t i = first; i < end; ++i) {
      float sum = 0.0f;
      for (int64_t worker = 0; worker < s.workers; ++worker) sum += ws.slice(worker)[s.CRS * s.PQ + i];
      dw[i] = sum;
    }
  });
}

}  // namespace kindling::cpu
