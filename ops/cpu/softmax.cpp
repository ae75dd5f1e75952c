// CPU softmax over the last dim of contiguous [rows, C] tensors, one row per task, in float: the
// row maximum is subtracted before exp, so every exp is <= 1 and the row sum is >= 1.
#include "ops/cpu/cpu_backend.h"
#include "ops/kernel_checks.h"

#include "core/parallel.h"

#include <algorithm>
#include <cmath>

namespace kindling {
namespace {

template <typename RowFn>
void for_each_row(int64_t rows, int64_t C, RowFn fn) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
  parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) fn(r * C);
  });
}

}  // namespace

// in, out [rows, C]; m = max_j in[r,j], s = sum_j exp(in[r,j] - m);
// out[r,j] = exp(in[r,j] - m) / s, or in[r,j] - m - log(s) when log.
void CpuBackend::softmax_fwd(const Tensor& out, const Tensor& in, bool log) {
  check_rows("softmax_fwd", {&out, &in});
  const int64_t C = in.size(1);
  const float* x = in.data<float>();
  float* y = out.data<float>();
  for_each_row(in.size(0), C, [&](int64_t base) {
    const float* xr = x + base;
    float* yr = y + base;
    const float m = *std::max_element(xr, xr + C);
    float s = 0.0f;
    if (log) {
      for (int64_t j = 0; j < C; ++j) s += std::exp(xr[j] - m);
      const float shift = m + std::log(s);
      for (int64_t j = 0; j < C; ++j) yr[j] = xr[j] - shift;
    } else {
      for (int64_t j = 0; j < C; ++j) s += (yr[j] = std::exp(xr[j] - m));
      const float inv = 1.0f / s;
      for (int64_t j = 0; j < C; ++j) yr[j] *= inv;
    }
  });
}

// grad_in, grad_out, out [rows, C];
// log:  grad_in = grad_out - exp(out) * sum_j grad_out[r,j]
// else: grad_in = out * (grad_out - sum_j grad_out[r,j] * out[r,j])
void CpuBackend::softmax_bwd(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) {
  check_rows("softmax_bwd", {&grad_in, &grad_out, &out});
  const int64_t C = out.size(1);
  const float* g = grad_out.data<float>();
  const float* y = out.data<float>();
  float* dx = grad_in.data<float>();
  for_each_row(out.size(0), C, [&](int64_t base) {
    const float* gr = g + base;
    const float* yr = y + base;
    float* dr = dx + base;
    float s = 0.0f;
    if (log) {
      for (int64_t j = 0; j < C; ++j) s += gr[j];
      for (int64_t j = 0; j < C; ++j) dr[j] = gr[j] - std::exp(yr[j]) * s;
    } else {
      for (int64_t j = 0; j < C; ++j) s += gr[j] * yr[j];
      for (int64_t j = 0; j < C; ++j) dr[j] = yr[j] * (gr[j] - s);
    }
  });
}

// labels [N] i64 (range-checked by the caller) -> out [N, C] f32; out[n, labels[n]] = 1, else 0.
void CpuBackend::one_hot(const Tensor& out, const Tensor& labels) {
  const int64_t N = out.size(0), C = out.size(1);
  float* y = out.data<float>();
  const int64_t* label = labels.data<int64_t>();
  std::fill(y, y + N * C, 0.0f);
  for (int64_t n = 0; n < N; ++n) y[n * C + label[n * labels.stride(0)]] = 1.0f;
}

}  // namespace kindling
