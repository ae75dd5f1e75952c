// CUDA loss kernel: the twin of ops/cpu/loss.cpp. One warp per row runs the passes that loss_row
// (losses/loss_rows.h) runs serially on the CPU, with the same per-loss row maths, in fp32 with
// warp-shuffle tree reductions.
#include "losses/loss_rows.h"
#include "ops/cuda/loss_launch.h"

namespace kindling {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;   // 256 threads: one warp per row
constexpr unsigned kFullMask = 0xffffffffu;

__device__ inline float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// logits [N,C], labels [N] -> row_loss [N], grad [N,C] (may be null) = grad_scale * dl/dz.
// Warp w of block b takes row n = b * kRowsPerBlock + w; lane l visits columns l, l + 32, ...
// Passes: m = max z (and the finiteness vote); S = sum exp(z - m), lse = m + ln S, zsum;
// psum over (lp_j, p_j); finish; dl/dz_j = p_coef p_j + y_coef [j == y] + extra_j.
template <class Row>
__global__ void loss_rows_kernel(LossDesc desc, float* row_loss, float* grad, const float* logits,
                                 const int64_t* labels, int64_t N, int64_t C, float grad_scale,
                                 int* bad_row) {
  const int lane = threadIdx.x % kWarp;
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (n >= N) return;   // whole warps leave together, so the shuffles below stay full
  const float* z = logits + n * C;
  const int64_t y = labels[n];
  if (y < 0 || y >= C) return;   // the caller checked labels; never index out of bounds

  float m = -INFINITY;
  bool finite = true;
  for (int64_t j = lane; j < C; j += kWarp) {
    const float v = z[j];
    finite &= k_isfinite(v);
    m = fmaxf(m, v);
  }
  if (!__all_sync(kFullMask, finite)) {
    if (lane == 0) atomicMin(bad_row, int(n));
    return;
  }
  m = warp_max(m);

  RowStats<float> stats{};
  stats.C = float(C);
  stats.z_y = z[y];
  float log_sum = 0;
  if constexpr (Row::uses_softmax || Row::uses_zsum) {
    float sum = 0, zsum = 0;
    for (int64_t j = lane; j < C; j += kWarp) {
      const float v = z[j];
      if constexpr (Row::uses_softmax) sum += k_exp(v - m);
      if constexpr (Row::uses_zsum) zsum += Row::z_term(desc, v, j == y);
    }
    if constexpr (Row::uses_softmax) log_sum = k_log(warp_sum(sum));
    if constexpr (Row::uses_zsum) stats.zsum = warp_sum(zsum);
  }
  // lp_j = (z_j - m) - ln S: z_j - lse would round lse, which is large for large logits.
  stats.lse = m + log_sum;
  if constexpr (Row::uses_softmax) {
    stats.lp_y = (stats.z_y - m) - log_sum;
    stats.q = k_exp(stats.lp_y);
    stats.one_minus_q = -k_expm1(stats.lp_y);   // fp32 sums: S - e_y would cancel here
  }
  if constexpr (Row::uses_psum) {
    RowSums<float> psum{};
    for (int64_t j = lane; j < C; j += kWarp) {
      const float lp = (z[j] - m) - log_sum;
      const RowSums<float> t = Row::p_terms(desc, lp, k_exp(lp), j == y);
      psum.s0 += t.s0;
      psum.s1 += t.s1;
    }
    stats.psum.s0 = warp_sum(psum.s0);
    stats.psum.s1 = warp_sum(psum.s1);
  }
  const RowCoef<float> coef = Row::finish(desc, stats);
  if (lane == 0) row_loss[n] = coef.value;
  if (grad == nullptr) return;
  float* g = grad + n * C;
  for (int64_t j = lane; j < C; j += kWarp) {
    RowElem<float> elem{z[j], 0.0f, 0.0f, j == y, {}};
    if constexpr (Row::uses_softmax) {
      elem.lp = (elem.z - m) - log_sum;
      elem.p = k_exp(elem.lp);
    }
    float d = coef.p_coef * elem.p + (elem.is_y ? coef.y_coef : 0.0f);
    if constexpr (Row::uses_extra) {
      if constexpr (Row::uses_psum) elem.terms = Row::p_terms(desc, elem.lp, elem.p, elem.is_y);
      d += Row::extra(desc, coef, stats.C, elem);
    }
    g[j] = grad_scale * d;
  }
}

}  // namespace

cudaError_t launch_loss_rows(const LossDesc& loss, float* row_loss, float* grad, const float* logits,
                             const int64_t* labels, int64_t N, int64_t C, float grad_scale,
                             int* bad_row_out, cudaStream_t stream) {
  if (N >= (int64_t(1) << 31) || C < 1) return cudaErrorInvalidValue;
  const cudaError_t memset_status = cudaMemsetAsync(bad_row_out, 0x7F, sizeof(int), stream);
  if (memset_status != cudaSuccess || N == 0) return memset_status;
  const dim3 block(kRowsPerBlock * kWarp);
  const dim3 grid(unsigned((N + kRowsPerBlock - 1) / kRowsPerBlock));
  visit_loss(loss.kind, [&](auto row_maths) {
    using Row = decltype(row_maths);
    loss_rows_kernel<Row><<<grid, block, 0, stream>>>(loss, row_loss, grad, logits, labels, N, C,
                                                      grad_scale, bad_row_out);
  });
  return cudaGetLastError();
}

}  // namespace kindling
