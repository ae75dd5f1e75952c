// The convolution plan and the lowering of one image (see conv_lowering.h).
#include "ops/cpu/conv_lowering.h"

#include "ops/cpu/conv_gemm.h"
#include "ops/cpu/im2col.h"
#include "ops/cpu/valid_range.h"

#include <algorithm>
#include <cstring>

namespace kindling::cpu {
namespace {

constexpr int64_t kChunkPixels = 512;                  // images per dot-product GEMM up to this
constexpr int64_t kMaxChunkFloats = int64_t(1) << 20;  // one worker's lowered images at most

}  // namespace

LoweringPlan make_lowering_plan(const Conv2dParams& p, bool allow_phased) {
  LoweringPlan plan;
  plan.Cg = p.C / p.groups, plan.Kg = p.K / p.groups;
  plan.CRS = plan.Cg * p.R * p.S, plan.HW = p.H * p.W, plan.PQ = p.P * p.Q;
  const int64_t sh = p.stride_h, sw = p.stride_w;
  // Phased unless its padding columns would be half the work or more (Ws >= 1.5 Q), one image's
  // GEMM would be too narrow to fill the register tiles (P*Ws < 64: 4x4 outputs), or a strided
  // 1×1 convolution would copy all of its phases to use one.
  const int64_t phase_width = (p.W + 2 * p.pad_w + sw - 1) / sw;
  const bool one_by_one_strided = p.R == 1 && p.S == 1 && (sh > 1 || sw > 1);
  plan.phased = allow_phased && 2 * phase_width < 3 * p.Q && p.P * phase_width >= 64 && !one_by_one_strided;
  if (plan.phased) {
    plan.copy_input = !(p.R == 1 && p.S == 1 && sh == 1 && sw == 1 && p.pad_h == 0 && p.pad_w == 0);
    plan.phases = sh * sw;
    plan.Hs = plan.copy_input ? (p.H + 2 * p.pad_h + sh - 1) / sh : p.H;
    plan.Ws = plan.copy_input ? (p.W + 2 * p.pad_w + sw - 1) / sw : p.W;
    plan.plane = plan.Hs * plan.Ws;
    plan.wide = p.P * plan.Ws;
    plan.lowered_floats = plan.copy_input ? plan.Cg * plan.phases * plan.plane + (p.S - 1) * p.dil_w / sw : 0;
    plan.rows.resize(size_t(plan.CRS));
    for (int64_t c = 0; c < plan.Cg; ++c)
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t dr = r * p.dil_h, ds = s * p.dil_w;
          const int64_t phase = (dr % sh) * sw + ds % sw;
          plan.rows[size_t((c * p.R + r) * p.S + s)] =
              (c * plan.phases + phase) * plan.plane + (dr / sh) * plan.Ws + ds / sw;
        }
  } else {
    plan.copy_input = true;
    plan.phases = 1, plan.Hs = plan.Ws = plan.plane = 0;
    plan.wide = plan.PQ;
    plan.lowered_floats = plan.CRS * plan.PQ;
    plan.rows = strided_rows(plan.CRS, plan.PQ);
  }
  const int64_t threads = num_threads();
  int64_t images = std::max<int64_t>(1, kChunkPixels / std::max<int64_t>(plan.wide, 1));
  images =
      std::min(images, std::max<int64_t>(1, kMaxChunkFloats / std::max<int64_t>(plan.lowered_floats, 1)));
  plan.workers = std::min<int64_t>(threads, p.N);
  plan.images = std::min(images, std::max<int64_t>(1, (p.N + threads - 1) / threads));  // every thread busy
  return plan;
}

const float* lower_image(const Conv2dParams& p, const LoweringPlan& plan, const float* t, int64_t n,
                         int64_t g, float* lowered, int64_t ld) {
  const float* image = t + (n * p.C + g * plan.Cg) * plan.HW;
  if (!plan.copy_input) return image;
  if (!plan.phased) {
    im2col(p, plan.Cg, image, lowered, ld > 0 ? ld : plan.PQ);
    return lowered;
  }
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for (int64_t a = 0; a < sh; ++a) {
    const ValidRange rows =
        valid_range(plan.Hs, sh, a - p.pad_h, p.H);  // phase row i is image row i*sh + a - ph
    for (int64_t b = 0; b < sw; ++b) {
      const ValidRange cols = valid_range(plan.Ws, sw, b - p.pad_w, p.W);
      const int64_t phase = a * sw + b;
      for (int64_t c = 0; c < plan.Cg; ++c)
        for (int64_t i = rows.lo; i < rows.hi; ++i) {
          const float* src = image + c * plan.HW + (i * sh + a - p.pad_h) * p.W;
          float* dst = lowered + (c * plan.phases + phase) * plan.plane + i * plan.Ws;
          if (sw == 1) {
            std::memcpy(dst + cols.lo, src + cols.lo + b - p.pad_w,
                        size_t(cols.hi - cols.lo) * sizeof(float));
          } else {
            for (int64_t j = cols.lo; j < cols.hi; ++j) dst[j] = src[j * sw + b - p.pad_w];
          }
        }
    }
  }
  return lowered;
}

}  // namespace kindling::cpu
