// CPU loss kernel: one generic loop over rows for every loss; the per-row maths is the loss's
// header, run by loss_row (losses/loss_rows.h) or, for short rows, loss_short_rows
// (losses/loss_short_rows.h): elementwise in float, row sums in double.
#include "core/parallel.h"
#include "losses/loss_rows.h"
#include "losses/loss_short_rows.h"
#include "ops/cpu/cpu_backend.h"

#include <algorithm>
#include <atomic>

namespace kindling {

// logits [N,C] f32 contiguous, labels [N] i64 in [0, C) -> row_loss [N] f32, grad [N,C] f32 (may be
// undefined): row_loss[n] = l(z_n, y_n), grad[n,:] = grad_scale * dl(z_n, y_n)/dz_n.
// Rows run in parallel; elementwise maths in float (vectorized), each row's sums and coefficients
// in double.
void CpuBackend::loss_rows(const LossDesc& loss, const Tensor& row_loss, const Tensor& grad,
                           const Tensor& logits, const Tensor& labels, float grad_scale) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const float* z = logits.data<float>();
  const int64_t* y = labels.data<int64_t>();
  const int64_t label_stride = labels.stride(0);
  float* out = row_loss.data<float>();
  float* g = grad.defined() ? grad.data<float>() : nullptr;
  std::atomic<int64_t> first_bad_row{N};
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(C, 1));

  auto flag_bad_row = [&](int64_t n) {
    int64_t seen = first_bad_row.load();
    while (n < seen && !first_bad_row.compare_exchange_weak(seen, n)) {}
  };

  visit_loss(loss.kind, [&](auto row_maths) {
    using Row = decltype(row_maths);
    parallel_for(0, N, grain, [&](int64_t begin, int64_t end) {
      // Short softmax rows go in blocks, vectorized across rows; square has too little work per
      // row to pay for the block's transposes.
      if (C <= kShortRow && Row::uses_softmax) {
        for (int64_t n = begin; n < end; n += kRowBlock) {
          const int64_t rows = std::min<int64_t>(kRowBlock, end - n);
          double values[kRowBlock];
          bool finite[kRowBlock];
          loss_short_rows<Row>(loss, z + n * C, C, y + n * label_stride, label_stride, rows,
                               g != nullptr ? g + n * C : nullptr, double(grad_scale), values,
                               finite);
          for (int64_t r = 0; r < rows; ++r) {
            if (!finite[r]) flag_bad_row(n + r);
            out[n + r] = float(values[r]);
          }
        }
        return;
      }
      for (int64_t n = begin; n < end; ++n) {
        double value = 0;
        if (!loss_row<Row, float, double>(loss, z + n * C, C, y[n * label_stride],
                                          g != nullptr ? g + n * C : nullptr, double(grad_scale),
                                          &value)) {
          flag_bad_row(n);
          continue;
        }
        out[n] = float(value);
      }
    });
  });

  const int64_t bad = first_bad_row.load();
  if (bad < N) {
    int64_t column = 0;
    while (column < C && k_isfinite(z[bad * C + column])) ++column;
    throw ValueError(fmt::format("loss {}: logits row {} holds a non-finite value ({} at column {})",
                                 loss_kind_name(loss.kind), bad, z[bad * C + column], column));
  }
}

}  // namespace kindling
