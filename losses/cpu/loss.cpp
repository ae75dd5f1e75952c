// CPU loss kernel: one generic loop over rows for every loss; the per-row maths is the loss's
// header, run by loss_row (losses/loss_rows.h) or, for short rows, loss_short_rows
// (losses/cpu/loss_short_rows.h): elementwise in float, row sums and the batch sum in double.
// The CUDA twin is losses/cuda/loss.cu; the contract of both is losses/loss_kernels.h.
#include "core/parallel.h"
#include "losses/cpu/loss_short_rows.h"
#include "losses/loss_checks.h"
#include "losses/loss_kernels.h"
#include "losses/loss_rows.h"

#include <algorithm>
#include <atomic>
#include <vector>

namespace kindling {
namespace {

// Lowers `first` to n: the first bad row wins whichever thread finds it.
void lower_to(std::atomic<int64_t>& first, int64_t n) {
  int64_t seen = first.load();
  while (n < seen && !first.compare_exchange_weak(seen, n)) {
  }
}

}  // namespace

// logits [N,C] f32 contiguous, labels [N] i64 -> out: row_loss [N] (reduction none) or the
// scalar mean or sum of row_loss[n] = l(z_n, y_n); grad [N,C] f32 (may be undefined):
// grad[n,:] = scale * dl(z_n, y_n)/dz_n with scale 1/N for the mean, else 1.
// Rows run in parallel (serially below the grain); each row's loss lands in double in a buffer
// that is summed in row order afterwards, so the result does not depend on the thread count.
// The labels' range and the logits' finiteness are checked in the same pass, row by row.
void cpu::loss_rows(const LossDesc& loss, const Tensor& out, const Tensor& grad, const Tensor& logits,
                    const Tensor& labels) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const float* z = logits.data<float>();
  const int64_t* y = labels.data<int64_t>();
  const int64_t label_stride = labels.stride(0);
  float* g = grad.defined() ? grad.data<float>() : nullptr;
  const double scale = loss.reduction == Reduction::mean ? 1.0 / double(N) : 1.0;
  thread_local std::vector<double> row_values;  // reused: no allocation per call
  if (row_values.size() < size_t(N)) row_values.resize(size_t(N));
  double* values = row_values.data();
  std::atomic<int64_t> first_bad_label{N}, first_bad_logit{N};
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(C, 1));

  visit_loss(loss.kind, [&](auto row_maths) {
    using Row = decltype(row_maths);
    parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
      // Short softmax rows go in blocks, vectorized across rows; square has too little work per
      // row to pay for the block's transposes.
      if (C <= kShortRow && Row::uses_softmax) {
        for (int64_t n = begin; n < end; n += kRowBlock) {
          const int64_t rows = std::min<int64_t>(kRowBlock, end - n);
          int64_t block_labels[kRowBlock];
          bool finite[kRowBlock];
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t label = y[(n + r) * label_stride];
            const bool in_range = label >= 0 && label < C;
            if (!in_range) lower_to(first_bad_label, n + r);
            block_labels[r] = in_range ? label : 0;
          }
          loss_short_rows<Row>(loss, z + n * C, C, block_labels, rows, g != nullptr ? g + n * C : nullptr,
                               scale, values + n, finite);
          for (int64_t r = 0; r < rows; ++r)
            if (!finite[r]) lower_to(first_bad_logit, n + r);
        }
        return;
      }
      for (int64_t n = begin; n < end; ++n) {
        const int64_t label = y[n * label_stride];
        if (label < 0 || label >= C) {
          lower_to(first_bad_label, n);
          continue;
        }
        if (!loss_row<Row, float, double>(loss, z + n * C, C, label, g != nullptr ? g + n * C : nullptr,
                                          scale, values + n))
          lower_to(first_bad_logit, n);
      }
    });
  });

  if (const int64_t bad = first_bad_label.load(); bad < N)
    throw_label_out_of_range(loss.kind, bad, y[bad * label_stride], logits);
  if (const int64_t bad = first_bad_logit.load(); bad < N)
    throw_non_finite_logit(loss.kind, bad, z + bad * C, C);
  float* result = out.data<float>();
  if (loss.reduction == Reduction::none) {
    for (int64_t n = 0; n < N; ++n) result[n] = float(values[n]);
    return;
  }
  double total = 0;
  for (int64_t n = 0; n < N; ++n) total += values[n];
  result[0] = float(loss.reduction == Reduction::mean ? total / double(N) : total);
}

}  // namespace kindling
