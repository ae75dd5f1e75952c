// CPU convolution as GEMMs (ops/cpu/conv_gemm: AVX-512 register tiles, or cblas_sgemm) over the
// lowered image (ops/cpu/conv_lowering.h: the phased padded image, or im2col columns). The batch
// is cut into chunks spread over the thread pool; each worker owns a slice of one workspace and
// runs single-threaded GEMMs, so there is one level of threads. Stride-1 3×3 convolutions with
// 16 channels or more in and out go to Winograd F(2×2, 3×3) or F(4×4, 3×3), forward and both
// gradients (ops/cpu/conv_winograd.h says which where; at `--precision bf16` F(2×2, 3×3) on bf16
// tile GEMMs). At bf16 the other convolutions go to ops/cpu/conv_bf16.h. Otherwise, per group g:
//   forward      y[n]_g [Kg, PQ] = W_g [Kg, CRS] · B(x[n]_g)     (per image; per chunk for columns)
//   data grad    stride 1: a forward convolution of dy with the flipped, transposed weights;
//                otherwise dcol [CRS, PQ] = W_gᵀ · dy[n]_g, dx[n]_g = col2im(dcol)
//   weight grad  dW_g [Kg, CRS] = sum_n dy[n]_g · B(x[n]_g)ᵀ, per worker, the workers' partial
//                sums added in worker order; as a broadcast GEMM with dy packed as A and B's
//                transpose (channels-last phased image, or transposed columns) as B, or, for
//                phased groups whose channels are not a multiple of 16, as dot products.
#include "ops/cpu/conv_bf16.h"
#include "ops/cpu/conv_gemm.h"
#include "ops/cpu/conv_lowering.h"
#include "ops/cpu/conv_winograd.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/im2col.h"
#include "ops/cpu/lane_sums.h"
#include "ops/cpu/transpose.h"

#include "core/parallel.h"
#include "core/precision.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

namespace kindling {
namespace {

using cpu::for_each_chunk;
using cpu::lower_image;
using cpu::LoweringPlan;
using cpu::output_is_dense;
using cpu::PackedA;
using cpu::Workspace;

// Columns lowering: per chunk of images one GEMM over their im2col matrices side by side
// [CRS, images*PQ], its output block [Kg, images*PQ] split back into the images (when more than one).
void forward_columns(const Conv2dParams& p, const LoweringPlan& plan, float* y, const float* x,
                     const std::vector<PackedA>& weights, const float* bias) {
  const int64_t col_floats = plan.images * plan.lowered_floats;
  const int64_t block_floats = plan.images > 1 ? plan.Kg * plan.images * plan.PQ : 0;
  const Workspace ws(plan.workers, col_floats + block_floats);
  for_each_chunk(
      p, plan, [](int64_t) {},
      [&](int64_t worker, int64_t n0, int64_t chunk_images) {
        float* col = ws.slice(worker);
        float* block = col + col_floats;
        const int64_t ld = chunk_images * plan.PQ;
        const std::vector<int64_t> rows = cpu::strided_rows(plan.CRS, ld);
        for (int64_t g = 0; g < p.groups; ++g) {
          for (int64_t b = 0; b < chunk_images; ++b)
            lower_image(p, plan, x, n0 + b, g, col + b * plan.PQ, ld);
          float* yg = y + (n0 * p.K + g * plan.Kg) * plan.PQ;
          cpu::gemm_nn(weights[size_t(g)], ld, col, rows.data(), chunk_images == 1 ? yg : block, ld, false);
          for (int64_t b = 0; b < chunk_images; ++b)
            for (int64_t k = 0; k < plan.Kg; ++k) {
              const float v = bias ? bias[g * plan.Kg + k] : 0.0f;
              float* dst = yg + (b * p.K + k) * plan.PQ;
              if (chunk_images == 1) {
                if (bias)
                  for (int64_t i = 0; i < plan.PQ; ++i) dst[i] += v;
              } else {
                const float* src = block + k * ld + b * plan.PQ;
                for (int64_t i = 0; i < plan.PQ; ++i) dst[i] = src[i] + v;
              }
            }
        }
      });
}

// y = conv(x) + bias, given the weights packed per group as [Kg, CRS].
void forward(const Conv2dParams& p, float* y, const float* x, const std::vector<PackedA>& weights,
             const float* bias) {
  const LoweringPlan plan = cpu::make_lowering_plan(p);
  if (!plan.phased) return forward_columns(p, plan, y, x, weights, bias);
  const bool dense = output_is_dense(p, plan);
  const int64_t block_floats = dense ? 0 : plan.Kg * plan.wide;
  const Workspace ws(plan.workers, plan.lowered_floats + block_floats);
  auto begin = [&](int64_t worker) {  // zero the padded image's borders, never written again
    if (plan.phased && plan.copy_input) std::fill_n(ws.slice(worker), plan.lowered_floats, 0.0f);
  };
  for_each_chunk(p, plan, begin, [&](int64_t worker, int64_t n0, int64_t chunk_images) {
    float* lowered = ws.slice(worker);
    float* block = lowered + plan.lowered_floats;
    for (int64_t n = n0; n < n0 + chunk_images; ++n)
      for (int64_t g = 0; g < p.groups; ++g) {
        const float* b = lower_image(p, plan, x, n, g, lowered);
        float* yg = y + (n * p.K + g * plan.Kg) * plan.PQ;
        cpu::gemm_nn(weights[size_t(g)], plan.wide, b, plan.rows.data(), dense ? yg : block,
                     dense ? plan.PQ : plan.wide, false);
        for (int64_t k = 0; k < plan.Kg; ++k) {  // drop padding columns, add the bias
          const float v = bias ? bias[g * plan.Kg + k] : 0.0f;
          if (dense && !bias) break;
          const float* src = (dense ? yg : block) + k * (dense ? plan.PQ : plan.wide);
          float* dst = yg + k * plan.PQ;
          const int64_t src_stride = dense ? p.Q : plan.Ws;
          for (int64_t oh = 0; oh < p.P; ++oh)
            for (int64_t ow = 0; ow < p.Q; ++ow) dst[oh * p.Q + ow] = src[oh * src_stride + ow] + v;
        }
      }
  });
}

std::vector<PackedA> pack_weights(const Conv2dParams& p, const float* w) {  // [Kg, CRS] per group
  const int64_t Kg = p.K / p.groups, CRS = p.C / p.groups * p.R * p.S;
  std::vector<PackedA> packed;
  for (int64_t g = 0; g < p.groups; ++g) packed.emplace_back(w + g * Kg * CRS, Kg, CRS, CRS, 1);
  return packed;
}

// The data gradient of a stride-1 convolution is a stride-1 convolution of dy: window flipped,
// in/out channels swapped (w'[g*Cg + c, k, r, s] = w[g*Kg + k, c, R-1-r, S-1-s]), padding
// dil*(R-1) - pad. Usable when that padding is not negative.
bool data_grad_is_convolution(const Conv2dParams& p) {
  return p.stride_h == 1 && p.stride_w == 1 && p.pad_h <= p.dil_h * (p.R - 1) &&
         p.pad_w <= p.dil_w * (p.S - 1);
}

// That convolution's parameters.
Conv2dParams flipped_convolution(const Conv2dParams& p) {
  Conv2dParams t = p;
  t.C = p.K, t.H = p.P, t.W = p.Q, t.K = p.C, t.P = p.H, t.Q = p.W;
  t.pad_h = p.dil_h * (p.R - 1) - p.pad_h;
  t.pad_w = p.dil_w * (p.S - 1) - p.pad_w;
  return t;
}

// On the direct kernels (conv2d_bwd_data sends Winograd's shapes to winograd_conv first).
void data_grad_by_convolution(const Conv2dParams& p, float* dx, const float* dy, const float* w) {
  const Conv2dParams t = flipped_convolution(p);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, RS = p.R * p.S;
  const int64_t panel = PackedA::panel_rows();
  std::vector<PackedA> flipped;  // per group [Cg, Kg*R*S]: row c, column (k, r, s)
  for (int64_t g = 0; g < p.groups; ++g) {
    const float* wg = w + g * Kg * Cg * RS;
    // Per k, the panel's channels c0.. are one contiguous [rows, R*S] block of w, read in order.
    flipped.emplace_back(Cg, Kg * RS, [&](int64_t c0, int64_t rows, float* out) {
      for (int64_t k = 0; k < Kg; ++k) {
        const float* src = wg + (k * Cg + c0) * RS;
        float* dst = out + k * RS * panel;
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t rs = 0; rs < RS; ++rs) dst[(RS - 1 - rs) * panel + i] = src[i * RS + rs];
      }
    });
  }
  forward(t, dx, dy, flipped, nullptr);
}

// dbias [K] = sum over n, p, q of dy [N,K,P,Q], in double; channels over threads.
void bias_grad(const Conv2dParams& p, const float* dy, float* dbias) {
  const int64_t PQ = p.P * p.Q;
  parallel_for(0, p.K, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, p.N * PQ)),
               [&](int64_t k0, int64_t k1) {
                 for (int64_t k = k0; k < k1; ++k) {
                   double sum = 0.0;
                   for (int64_t n = 0; n < p.N; ++n) sum += cpu::sum_f64(dy + (n * p.K + k) * PQ, PQ);
                   dbias[k] = float(sum);
                 }
               });
}

// Adds the workers' partial weight gradients into dw [K, C/G, R, S], in worker order. Each partial
// is [K, C/G*R*S] at `offset` in its worker's slice, or [K, R*S, C/G] when taps_outer (the
// channels-last kernel's order). Rows over threads: 11M floats per ResNet-18 step, too many for
// one thread while the other waits.
void sum_partials(const Conv2dParams& p, const Workspace& partials, int64_t workers, int64_t offset,
                  float* dw, bool taps_outer = false) {
  const int64_t Cg = p.C / p.groups, RS = p.R * p.S, CRS = Cg * RS;
  parallel_for(0, p.K, std::max<int64_t>(1, 16384 / CRS), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      float* dst = dw + k * CRS;
      for (int64_t worker = 0; worker < workers; ++worker) {
        const float* src = partials.slice(worker) + offset + k * CRS;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t rs = 0; rs < RS; ++rs) {
            const float v = src[taps_outer ? rs * Cg + c : c * RS + rs];
            dst[c * RS + rs] = worker == 0 ? v : dst[c * RS + rs] + v;
          }
      }
    }
  });
}

// Weight gradient, columns lowering: per chunk, dW_g += dy_g [Kg, images*PQ] · colᵀ [images*PQ, CRS] with the
// broadcast kernel: the images' im2col matrices side by side, transposed so each pixel's taps are
// a row of B, and dy packed as A (its pixels are the depth).
void weight_grad_columns(const Conv2dParams& p, const LoweringPlan& plan, float* dw, const float* x,
                         const float* dy) {
  const int64_t dw_floats = p.K * plan.CRS;
  const int64_t col_floats = plan.images * plan.lowered_floats;  // [CRS, images*PQ], then its transpose
  const Workspace ws(plan.workers, 2 * col_floats + dw_floats);
  std::vector<char> started(size_t(plan.workers), 0);
  for_each_chunk(
      p, plan, [](int64_t) {},
      [&](int64_t worker, int64_t n0, int64_t chunk_images) {
        float* col = ws.slice(worker);
        float* col_t = col + col_floats;
        float* dw_acc = col_t + col_floats;
        const int64_t pixels = chunk_images * plan.PQ;
        const std::vector<int64_t> pixel_rows = cpu::strided_rows(pixels, plan.CRS);
        for (int64_t g = 0; g < p.groups; ++g) {
          for (int64_t b = 0; b < chunk_images; ++b)
            lower_image(p, plan, x, n0 + b, g, col + b * plan.PQ, pixels);
          cpu::transpose(col, plan.CRS, pixels, pixels, col_t, plan.CRS);
          PackedA dy_panels(plan.Kg, pixels);
          for (int64_t b = 0; b < chunk_images; ++b)
            dy_panels.set_columns(b * plan.PQ, plan.PQ, dy + ((n0 + b) * p.K + g * plan.Kg) * plan.PQ,
                                  plan.PQ);
          cpu::gemm_nn(dy_panels, plan.CRS, col_t, pixel_rows.data(), dw_acc + g * plan.Kg * plan.CRS,
                       plan.CRS, started[size_t(worker)] != 0);
        }
        started[size_t(worker)] = 1;
      });
  sum_partials(p, ws, plan.workers, 2 * col_floats, dw);
}

// Weight gradient, phased lowering: per chunk one gemm_nt over its images (segments), dy read in
// place when it is dense, else copied into [Kg, wide] blocks whose padding columns stay zero.
void weight_grad_segments(const Conv2dParams& p, const LoweringPlan& plan, float* dw, const float* x,
                          const float* dy) {
  const int64_t dw_floats = p.K * plan.CRS;
  const bool dense = output_is_dense(p, plan);
  const int64_t dy_floats = dense ? 0 : plan.Kg * plan.wide;
  const int64_t lowered_floats = plan.copy_input ? plan.lowered_floats : 0;
  const Workspace ws(plan.workers, plan.images * (lowered_floats + dy_floats) + dw_floats);
  std::vector<char> started(size_t(plan.workers), 0);
  auto begin = [&](int64_t worker) {
    if (plan.phased && (plan.copy_input || !dense))
      std::fill_n(ws.slice(worker), ws.per_worker - dw_floats, 0.0f);
  };
  for_each_chunk(p, plan, begin, [&](int64_t worker, int64_t n0, int64_t chunk_images) {
    float* lowered = ws.slice(worker);
    float* dy_blocks = lowered + plan.images * lowered_floats;
    float* dw_acc = dy_blocks + plan.images * dy_floats;
    const bool accumulate = started[size_t(worker)] != 0;
    started[size_t(worker)] = 1;
    for (int64_t g = 0; g < p.groups; ++g) {
      // B_i: image n0+i lowered into slot i (or read in place: 1×1 unpadded).
      const float* b = lower_image(p, plan, x, n0, g, lowered);
      for (int64_t i = 1; i < chunk_images; ++i)
        lower_image(p, plan, x, n0 + i, g, lowered + i * lowered_floats);
      const float* a = dy + (n0 * p.K + g * plan.Kg) * plan.PQ;
      cpu::Segments segments{chunk_images, p.K * plan.PQ, plan.copy_input ? lowered_floats : p.C * plan.HW};
      if (!dense) {
        for (int64_t i = 0; i < chunk_images; ++i)
          for (int64_t k = 0; k < plan.Kg; ++k)
            for (int64_t oh = 0; oh < p.P; ++oh)
              std::memcpy(dy_blocks + (i * plan.Kg + k) * plan.wide + oh * plan.Ws,
                          a + (i * p.K + k) * plan.PQ + oh * p.Q, size_t(p.Q) * sizeof(float));
        a = dy_blocks;
        segments.a_stride = plan.Kg * plan.wide;
      }
      cpu::gemm_nt(plan.Kg, plan.CRS, plan.wide, a, plan.wide, b, plan.rows.data(),
                   dw_acc + g * plan.Kg * plan.CRS, plan.CRS, accumulate, segments);
    }
  });
  const int64_t offset = plan.images * (lowered_floats + dy_floats);
  sum_partials(p, ws, plan.workers, offset, dw);
}

// Weight gradient when a group has a multiple of 16 channels, with the broadcast kernel
// (gemm_nn_blocks) instead of dot products:
//   dW_g[k, (r,s), c] = sum_j dy[k, j] · X[j + shift(r,s), c]
// where X [phases * Hs*Ws, Cg] is the phased image channels-last, j runs over the wide pixels
// p*Ws + q (dy is 0 at q >= Q) and shift(r,s) is the tap's phase plane and offset. Each 16
// channels of one tap form a column block of B read straight from X; dy is packed as A. The result
// comes out as [Kg, R*S, Cg] and is permuted into [Kg, Cg, R, S] when the partials are added.
void weight_grad_channels_last(const Conv2dParams& p, const LoweringPlan& plan, float* dw, const float* x,
                               const float* dy) {
  const int64_t RS = p.R * p.S, Cg = plan.Cg, cols = RS * Cg;
  const int64_t channel_stride = plan.phases * plan.plane;
  const int64_t image_floats = (channel_stride + (p.S - 1) * p.dil_w) * Cg;  // + read-past slack
  const int64_t dw_floats = p.K * cols;
  const int64_t lowered_floats = plan.copy_input ? plan.lowered_floats : 0;
  const Workspace ws(plan.workers, lowered_floats + image_floats + dw_floats);
  std::vector<std::optional<PackedA>> dy_panels(size_t(plan.workers));
  std::vector<std::vector<const float*>> blocks(size_t(plan.workers));
  std::vector<char> started(size_t(plan.workers), 0);
  auto begin = [&](int64_t worker) {
    float* scratch = ws.slice(worker);
    std::fill_n(scratch, lowered_floats + image_floats, 0.0f);  // padding and slack stay zero
    dy_panels[size_t(worker)].emplace(plan.Kg, plan.wide);
    const float* image = scratch + lowered_floats;
    for (int64_t rs = 0; rs < RS; ++rs)
      for (int64_t c = 0; c < Cg; c += 16)
        blocks[size_t(worker)].push_back(image + plan.rows[size_t(rs)] * Cg + c);  // rows[rs]: tap (0,r,s)
  };
  for_each_chunk(p, plan, begin, [&](int64_t worker, int64_t n0, int64_t chunk_images) {
    float* lowered = ws.slice(worker);
    float* image = lowered + lowered_floats;
    float* dw_acc = image + image_floats;
    PackedA& panels = *dy_panels[size_t(worker)];
    for (int64_t n = n0; n < n0 + chunk_images; ++n) {
      for (int64_t g = 0; g < p.groups; ++g) {
        const float* phased = lower_image(p, plan, x, n, g, lowered);  // [Cg, phases*Hs*Ws]
        cpu::transpose(phased, Cg, channel_stride, channel_stride, image, Cg);
        const float* dyg = dy + (n * p.K + g * plan.Kg) * plan.PQ;
        for (int64_t oh = 0; oh < p.P; ++oh) panels.set_columns(oh * plan.Ws, p.Q, dyg + oh * p.Q, plan.PQ);
        cpu::gemm_nn_blocks(panels, cols, blocks[size_t(worker)].data(), Cg, dw_acc + g * plan.Kg * cols,
                            cols, started[size_t(worker)] != 0);
      }
      started[size_t(worker)] = 1;
    }
  });
  sum_partials(p, ws, plan.workers, lowered_floats + image_floats, dw, /*taps_outer=*/true);
}

}  // namespace

// x [N,C,H,W], w [K,C/G,R,S], bias [K] or undefined -> y [N,K,P,Q];
// y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*C/G + c, p*sh - ph + r*dh, q*sw - pw + s*dw] * w[k,c,r,s]
void CpuBackend::conv2d_fwd(const Conv2dParams& p, const Tensor& y, const Tensor& x, const Tensor& w,
                            const Tensor& bias) {
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  if (cpu::winograd_applies(p))
    return cpu::winograd_conv(p, y.data<float>(), x.data<float>(), w.data<float>(), false, b);
  if (gemm_precision() == Precision::bf16)
    return cpu::conv_bf16_forward(p, y.data<float>(), x.data<float>(), w.data<float>(), b);
  forward(p, y.data<float>(), x.data<float>(), pack_weights(p, w.data<float>()), b);
}

// dy [N,K,P,Q], w [K,C/G,R,S] -> dx [N,C,H,W];  dx[n]_g = col2im(W_gᵀ · dy[n]_g)
void CpuBackend::conv2d_bwd_data(const Conv2dParams& p, const Tensor& dx, const Tensor& dy, const Tensor& w) {
  if (p.N == 0) return;
  if (data_grad_is_convolution(p)) {
    const Conv2dParams t = flipped_convolution(p);
    if (cpu::winograd_applies(t))
      return cpu::winograd_conv(t, dx.data<float>(), dy.data<float>(), w.data<float>(), /*flipped=*/true,
                                nullptr);
  }
  if (gemm_precision() == Precision::bf16)
    return cpu::conv_bf16_data_grad(p, dx.data<float>(), dy.data<float>(), w.data<float>());
  if (data_grad_is_convolution(p))
    return data_grad_by_convolution(p, dx.data<float>(), dy.data<float>(), w.data<float>());
  // Strided (or padded beyond the window): the explicit transpose through a column matrix.
  const LoweringPlan plan = cpu::make_lowering_plan(p, /*allow_phased=*/false);
  const float* dyp = dy.data<float>();
  float* dxp = dx.data<float>();
  std::vector<PackedA> transposed;  // W_gᵀ [CRS, Kg]
  for (int64_t g = 0; g < p.groups; ++g)
    transposed.emplace_back(w.data<float>() + g * plan.Kg * plan.CRS, plan.CRS, plan.Kg, 1, plan.CRS);
  const std::vector<int64_t> dy_rows = cpu::strided_rows(plan.Kg, plan.PQ);
  const Workspace ws(plan.workers, plan.lowered_floats);
  for_each_chunk(
      p, plan, [](int64_t) {},
      [&](int64_t worker, int64_t n0, int64_t chunk_images) {
        float* dcol = ws.slice(worker);
        for (int64_t n = n0; n < n0 + chunk_images; ++n)
          for (int64_t g = 0; g < p.groups; ++g) {
            cpu::gemm_nn(transposed[size_t(g)], plan.PQ, dyp + (n * p.K + g * plan.Kg) * plan.PQ,
                         dy_rows.data(), dcol, plan.PQ, false);
            cpu::col2im(p, plan.Cg, dcol, plan.PQ, dxp + (n * p.C + g * plan.Cg) * plan.HW);
          }
      });
}

// x [N,C,H,W], dy [N,K,P,Q] -> dw [K,C/G,R,S] = sum_n dy[n]_g · B(x[n]_g)ᵀ per group,
// dbias [K] (if defined) = sum_{n,p,q} dy[n,k,p,q]. Each worker sums its images into its own
// partial; the partials are added in worker order, so the result does not depend on thread timing.
void CpuBackend::conv2d_bwd_weight(const Conv2dParams& p, const Tensor& dw, const Tensor& dbias,
                                   const Tensor& x, const Tensor& dy) {
  const LoweringPlan plan = cpu::make_lowering_plan(p);
  float* dwp = dw.data<float>();
  if (dbias.defined()) bias_grad(p, dy.data<float>(), dbias.data<float>());
  if (p.N == 0) {  // an empty batch
    std::fill_n(dwp, dw.numel(), 0.0f);
  } else if (cpu::winograd_applies(p)) {
    cpu::winograd_weight_grad(p, dwp, x.data<float>(), dy.data<float>());
  } else if (gemm_precision() == Precision::bf16) {
    cpu::conv_bf16_weight_grad(p, dwp, x.data<float>(), dy.data<float>());
  } else if (!plan.phased) {
    weight_grad_columns(p, plan, dwp, x.data<float>(), dy.data<float>());
  } else if (plan.Cg % 16 == 0) {
    weight_grad_channels_last(p, plan, dwp, x.data<float>(), dy.data<float>());
  } else {
    weight_grad_segments(p, plan, dwp, x.data<float>(), dy.data<float>());
  }
}

}  // namespace kindling
