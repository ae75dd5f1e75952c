// CUDA loss kernel: the twin of losses/cpu/loss.cpp (the contract of both: losses/loss_kernels.h). One warp
// per row runs the passes that loss_row (losses/loss_rows.h) runs serially on the CPU, with the same per-loss
// row maths, in fp32 with warp-shuffle tree reductions. Bad input (a label outside [0, C), a non-finite
// logit) is found on the device and reported at the next synchronisation, so a loss call never waits for the
// GPU.
#include "core/backend.h"
#include "losses/loss_checks.h"
#include "losses/loss_kernels.h"
#include "losses/loss_rows.h"
#include "ops/cuda/cuda_context.h"

#include <atomic>
#include <climits>
#include <mutex>

namespace kindling {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = 8;  // 256 threads: one warp per row
constexpr unsigned kFullMask = 0xffffffffu;

__device__ inline float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}
__device__ inline float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// The first bad row of one loss call, as the loss kernel finds it (INT_MAX: none); the fault
// kernel turns it into a LossFault and resets it for the next call.
struct BadRows {
  int label_row;
  int logit_row;
};

// The first bad input since the host last looked: in mapped pinned memory, written by the fault
// kernel and read by the host after a synchronisation, with no copy of its own.
struct LossFault {
  int64_t row;     // -1: no fault
  int64_t label;   // bad_label: the label found in that row
  int64_t column;  // else: the first non-finite column of the row, and its value
  float value;
  int bad_label;
  int kind;  // the LossKind of the call
  int64_t N, C;
};

// Row n cannot be computed: its loss is NaN, its gradient zero, and the row is flagged.
__device__ void mark_bad_row(int* first_bad_row, float* row_loss, float* grad, int64_t n, int64_t C,
                             int lane) {
  if (lane == 0) {
    atomicMin(first_bad_row, int(n));
    row_loss[n] = NAN;
  }
  if (grad != nullptr)
    for (int64_t j = lane; j < C; j += kWarp) grad[n * C + j] = 0.0f;
}

// logits [N,C], labels [N] -> row_loss [N], grad [N,C] (may be null) = grad_scale * dl/dz.
// Warp w of block b takes row n = b * kRowsPerBlock + w; lane l visits columns l, l + 32, ...
// Passes: m = max z (and the finiteness vote); S = sum exp(z - m), lse = m + ln S, zsum;
// psum over (lp_j, p_j); finish; dl/dz_j = p_coef p_j + y_coef [j == y] + extra_j.
// A row with a bad label or logit is flagged in bad_rows instead (mark_bad_row).
template <class Row>
__global__ void loss_rows_kernel(LossDesc desc, float* row_loss, float* grad, const float* logits,
                                 const int64_t* labels, int64_t N, int64_t C, float grad_scale,
                                 BadRows* bad_rows) {
  const int lane = threadIdx.x % kWarp;
  const int64_t n = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  if (n >= N) return;  // whole warps leave together, so the shuffles below stay full
  const float* z = logits + n * C;
  const int64_t y = labels[n];
  if (y < 0 || y >= C) return mark_bad_row(&bad_rows->label_row, row_loss, grad, n, C, lane);

  float m = -INFINITY;
  bool finite = true;
  for (int64_t j = lane; j < C; j += kWarp) {
    const float v = z[j];
    finite &= k_isfinite(v);
    m = fmaxf(m, v);
  }
  if (!__all_sync(kFullMask, finite)) return mark_bad_row(&bad_rows->logit_row, row_loss, grad, n, C, lane);
  m = warp_max(m);

  RowStats<float> stats{};
  stats.C = float(C);
  stats.z_y = z[y];
  float log_sum = 0, sum_exp = 1, others = 0;
  if constexpr (Row::uses_softmax || Row::uses_zsum) {
    float zsum = 0;
    sum_exp = 0;
    for (int64_t j = lane; j < C; j += kWarp) {
      const float v = z[j];
      if constexpr (Row::uses_softmax) {
        const float e = k_exp(v - m);
        sum_exp += e;
        if (j != y) others += e;
      }
      if constexpr (Row::uses_zsum) zsum += Row::z_term(desc, v, j == y);
    }
    if constexpr (Row::uses_softmax) {
      sum_exp = warp_sum(sum_exp);
      others = warp_sum(others);
      log_sum = k_log(sum_exp);
    }
    if constexpr (Row::uses_zsum) stats.zsum = warp_sum(zsum);
  }
  // lp_j = (z_j - m) - ln S: z_j - lse would round lse, which is large for large logits.
  stats.lse = m + log_sum;
  if constexpr (Row::uses_softmax) {
    stats.lp_y = (stats.z_y - m) - log_sum;
    stats.q = k_exp(stats.lp_y);
    // 1 - q from the other classes' own sum, as the CPU's (S - e_y) / S: S - e_y would cancel, and
    // -expm1(lp_y) keeps only what S kept in float (nothing below 6e-8 when e_y = 1).
    stats.one_minus_q = others / sum_exp;
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
    // On the true class p_coef p_y + y_coef cancels in float (CE: p_y - 1); written with 1 - q,
    // which pass 2 computed without cancelling, it keeps its digits as the CPU's double sum does.
    float d = coef.p_coef * elem.p;
    if (elem.is_y) {
      if constexpr (Row::uses_softmax)
        d = (coef.p_coef + coef.y_coef) - coef.p_coef * stats.one_minus_q;
      else
        d += coef.y_coef;
    }
    if constexpr (Row::uses_extra) {
      if constexpr (Row::uses_psum) elem.terms = Row::p_terms(desc, elem.lp, elem.p, elem.is_y);
      d += Row::extra(desc, coef, stats.C, elem);
    }
    g[j] = grad_scale * d;
  }
}

// bad_rows of the call just run -> fault (unless an unread one is there); bad_rows reset.
// labels [N] and logits [N,C] are that call's, contiguous. One thread: it runs once per call.
__global__ void record_loss_fault_kernel(BadRows* bad_rows, LossFault* fault, const float* logits,
                                         const int64_t* labels, int64_t N, int64_t C, int kind) {
  const BadRows found = *bad_rows;
  bad_rows->label_row = bad_rows->logit_row = INT_MAX;
  if (fault->row >= 0 || (found.label_row >= N && found.logit_row >= N)) return;
  // Labels first, as the CPU checks them first.
  const bool bad_label = found.label_row < N;
  const int64_t row = bad_label ? found.label_row : found.logit_row;
  fault->bad_label = bad_label;
  fault->label = labels[row];
  int64_t column = 0;
  while (column < C - 1 && k_isfinite(logits[row * C + column])) ++column;
  fault->column = column;
  fault->value = logits[row * C + column];
  fault->kind = kind;
  fault->N = N;
  fault->C = C;
  fault->row = row;
}

struct FaultState {
  BadRows* bad_rows = nullptr;        // device memory
  LossFault* fault_host = nullptr;    // mapped pinned memory, as the host sees it
  LossFault* fault_device = nullptr;  // the same memory, as kernels see it
};

FaultState faults;
std::atomic<bool> faults_ready{false};  // set once the first loss call has made them

// Throws the first bad input a loss kernel flagged since the last look (cuda::raise_deferred_errors).
void raise_loss_fault() {
  if (!faults_ready) return;  // no loss has run: nothing to report, and nothing to allocate
  volatile LossFault* fault = faults.fault_host;
  if (fault->row < 0) return;
  const LossFault found{fault->row,       fault->label, fault->column, fault->value,
                        fault->bad_label, fault->kind,  fault->N,      fault->C};
  fault->row = -1;  // reported once; the next bad input is recorded afresh
  const LossKind kind = LossKind(found.kind);
  if (found.bad_label) {
    const std::string logits =
        fmt::format("f32{} on {}", shape_str({found.N, found.C}), Device::cuda(0).str());
    throw_label_out_of_range(kind, found.row, found.label, found.C, logits);
  }
  throw_non_finite_logit_at(kind, found.row, found.column, found.value);
}

FaultState& fault_state() {
  static std::once_flag once;
  std::call_once(once, [] {
    KINDLING_CUDA_CHECK(cudaMalloc(&faults.bad_rows, sizeof(BadRows)));
    const BadRows none{INT_MAX, INT_MAX};
    KINDLING_CUDA_CHECK(cudaMemcpy(faults.bad_rows, &none, sizeof(BadRows), cudaMemcpyHostToDevice));
    KINDLING_CUDA_CHECK(cudaHostAlloc(&faults.fault_host, sizeof(LossFault), cudaHostAllocMapped));
    faults.fault_host->row = -1;
    KINDLING_CUDA_CHECK(cudaHostGetDevicePointer(&faults.fault_device, faults.fault_host, 0));
    faults_ready = true;
    cuda::add_deferred_error_check(raise_loss_fault);
  });
  return faults;
}

}  // namespace

// logits [N,C] contiguous, labels [N] -> out: row_loss [N] (reduction none) or their mean or sum [];
// grad [N,C] (may be undefined) = d(sum of out)/d(logits). The loss kernel writes the row losses
// (into `out` itself for reduction none) and the reduce kernel makes the scalar. A label outside
// [0, C) or a non-finite logit makes its row NaN and is thrown, naming the row and value, at the
// next synchronisation (cuda::raise_deferred_errors): checking here would wait for the GPU on every
// call.
void cuda::loss_rows(const LossDesc& loss, const Tensor& out, const Tensor& grad, const Tensor& logits,
                     const Tensor& labels) {
  const int64_t N = logits.size(0), C = logits.size(1);
  KINDLING_CHECK(N < (int64_t(1) << 31) && C >= 1, ShapeError,
                 "loss {} on CUDA: logits {} need fewer than 2^31 rows and at least one class",
                 loss_kind_name(loss.kind), logits.describe());
  const Tensor dense_labels = labels.contiguous();
  const bool per_row = loss.reduction == Reduction::none;
  const Tensor row_loss = per_row ? out : empty({N}, TensorOptions{}.with_device(out.device()));
  const float grad_scale = loss.reduction == Reduction::mean ? float(1.0 / double(N)) : 1.0f;
  if (N > 0) {
    const FaultState& state = fault_state();
    const dim3 block(kRowsPerBlock * kWarp);
    const dim3 grid(unsigned((N + kRowsPerBlock - 1) / kRowsPerBlock));
    visit_loss(loss.kind, [&](auto row_maths) {
      using Row = decltype(row_maths);
      loss_rows_kernel<Row><<<grid, block, 0, cuda::stream()>>>(
          loss, row_loss.data<float>(), grad.defined() ? grad.data<float>() : nullptr, logits.data<float>(),
          dense_labels.data<int64_t>(), N, C, grad_scale, state.bad_rows);
    });
    KINDLING_CUDA_LAUNCH_CHECK("loss_rows_kernel");
    record_loss_fault_kernel<<<1, 1, 0, cuda::stream()>>>(state.bad_rows, state.fault_device,
                                                          logits.data<float>(), dense_labels.data<int64_t>(),
                                                          N, C, int(loss.kind));
    KINDLING_CUDA_LAUNCH_CHECK("record_loss_fault_kernel");
  }
  const ReduceOp total = loss.reduction == Reduction::mean ? ReduceOp::Mean : ReduceOp::Sum;
  if (!per_row) backend(out.device()).reduce(total, out, row_loss, 1, N, 1);
}

}  // namespace kindling
