// The CPU driver for short rows (C <= 32, e.g. the 10 classes of MNIST and CIFAR-10): the same
// passes and precision as loss_row (losses/loss_rows.h), run on a block of rows at once so that
// the loops vectorize across rows where a 10-element row gives them nothing to work with.
#pragma once
#include "losses/loss_rows.h"
#include "ops/cpu/transpose.h"

#include <cstdint>

namespace kindling {

// kRowBlock rows at a time, transposed to [C][kRowBlock] (cpu::transpose: in registers with
// AVX-512) so that every pass runs over independent rows in its inner loop, which vectorizes
// however small C is (row-at-a-time loops would spend their time in loop overhead). z [rows, C] with labels
// y[r] in [0, C) and rows <= kRowBlock -> finite[r], value[r], grad [rows, C] (may be null) = scale * dl/dz.
// Every per-row quantity is an array over the block's rows, and each loop below either computes
// elementwise into an array or only adds: GCC vectorizes neither a loop that does both (an exp
// beside a sum) nor one over an array of structs.
inline constexpr int64_t kShortRow = 32;
inline constexpr int kRowBlock = 16;
template <class Row>
void loss_short_rows(const LossDesc& desc, const float* z, int64_t C, const int64_t* y_in, int64_t rows,
                     float* grad, double scale, double* value, bool* finite) {
  using T = float;
  using Acc = double;
  constexpr int R = kRowBlock;
  // Pad to a full block with zero logits and label 0, whose results are dropped.
  alignas(64) T zt[kShortRow][R];
  alignas(64) T e[kShortRow][R];
  int64_t y[R];
  T z_y[R];
  cpu::transpose(z, rows, C, C, &zt[0][0], R);
  for (int64_t r = 0; r < rows; ++r) {
    y[r] = y_in[r];
    z_y[r] = z[r * C + y[r]];
  }
  for (int64_t r = rows; r < R; ++r) {
    y[r] = 0;
    for (int64_t j = 0; j < C; ++j) zt[j][r] = T(0);
    z_y[r] = T(0);
  }
  // pass 1: max and finiteness per row
  T m[R], zero_sum[R] = {};
  for (int r = 0; r < R; ++r) m[r] = zt[0][r];
  for (int64_t j = 0; j < C; ++j) {
    for (int r = 0; r < R; ++r) m[r] = zt[j][r] > m[r] ? zt[j][r] : m[r];
    for (int r = 0; r < R; ++r) zero_sum[r] += T(0) * zt[j][r];
  }
  for (int r = 0; r < R; ++r) finite[r] = zero_sum[r] == T(0);
  // A non-finite row's maths is garbage and dropped; a zero max keeps it from poisoning the rest.
  for (int r = 0; r < R; ++r) m[r] = finite[r] ? m[r] : T(0);
  // pass 2: exp(z - m) and its sum, the true class's exp again (the same float as e[y][r]); the
  // loss's z-sum
  Acc sum_exp[R] = {}, zsum[R] = {};
  T e_y[R] = {};
  if constexpr (Row::uses_softmax) {
    for (int64_t j = 0; j < C; ++j)
      for (int r = 0; r < R; ++r) e[j][r] = k_exp(zt[j][r] - m[r]);
    for (int64_t j = 0; j < C; ++j)
      for (int r = 0; r < R; ++r) sum_exp[r] += Acc(e[j][r]);
    for (int r = 0; r < R; ++r) e_y[r] = k_exp(z_y[r] - m[r]);
  }
  if constexpr (Row::uses_zsum) {
    for (int64_t j = 0; j < C; ++j) {
      T term[R];
      for (int r = 0; r < R; ++r) term[r] = Row::z_term(desc, zt[j][r], j == y[r]);
      for (int r = 0; r < R; ++r) zsum[r] += Acc(term[r]);
    }
  }
  // S is in [1, C] for a finite row (the max contributes exp(0) = 1); NaN for a dropped one.
  T log_sum[R] = {}, inv_sum[R] = {};
  Acc lp_y[R] = {}, q[R] = {}, one_minus_q[R] = {};
  if constexpr (Row::uses_softmax) {
    for (int r = 0; r < R; ++r) sum_exp[r] = finite[r] ? sum_exp[r] : Acc(1);
    for (int r = 0; r < R; ++r) log_sum[r] = log_poly(T(sum_exp[r]));
    for (int r = 0; r < R; ++r) {
      inv_sum[r] = T(Acc(1) / sum_exp[r]);
      lp_y[r] = (Acc(z_y[r]) - Acc(m[r])) - Acc(log_sum[r]);
      q[r] = Acc(e_y[r]) / sum_exp[r];
      one_minus_q[r] = (sum_exp[r] - Acc(e_y[r])) / sum_exp[r];
    }
  }
  // pass 3: sums over probabilities
  T term0[Row::uses_psum ? kShortRow : 1][R], term1[Row::uses_psum ? kShortRow : 1][R];
  Acc s0[R] = {}, s1[R] = {};
  if constexpr (Row::uses_psum) {
    for (int64_t j = 0; j < C; ++j) {
      for (int r = 0; r < R; ++r) {
        const RowSums<T> t =
            Row::p_terms(desc, (zt[j][r] - m[r]) - log_sum[r], e[j][r] * inv_sum[r], j == y[r]);
        term0[j][r] = t.s0;
        term1[j][r] = t.s1;
      }
      for (int r = 0; r < R; ++r) s0[r] += Acc(term0[j][r]);
      for (int r = 0; r < R; ++r) s1[r] += Acc(term1[j][r]);
    }
  }
  // The loss's own maths, once per row, in Acc, and the true class's gradient in Acc, where its
  // terms (p_y - 1 for CE) cancel. Over the whole block (the padding rows' results are dropped),
  // each result in its own array: the loop vectorizes across rows where the loss's maths allows.
  Acc row_value[R], y_grad[R];
  T p_coef[R], c0[R];
  for (int r = 0; r < R; ++r) {
    const RowStats<Acc> stats{Acc(C),  Acc(z_y[r]),   Acc(m[r]) + Acc(log_sum[r]),
                              lp_y[r], q[r],          one_minus_q[r],
                              zsum[r], {s0[r], s1[r]}};
    const RowCoef<Acc> coef = Row::finish(desc, stats);
    row_value[r] = coef.value;
    p_coef[r] = T(coef.p_coef);
    c0[r] = T(coef.c0);
    Acc g_y = coef.p_coef * stats.q + coef.y_coef;
    if constexpr (Row::uses_extra) {
      RowElem<Acc> elem{stats.z_y, stats.lp_y, stats.q, true, {}};
      if constexpr (Row::uses_psum) elem.terms = Row::p_terms(desc, stats.lp_y, stats.q, true);
      g_y += Row::extra(desc, coef, stats.C, elem);
    }
    y_grad[r] = g_y;
  }
  for (int64_t r = 0; r < rows; ++r) value[r] = row_value[r];
  if (grad == nullptr) return;
  // pass 4: the gradient, in the transposed block; then back to rows, the true class from y_grad
  const T scale_t = T(scale), C_t = T(C);
  for (int64_t j = 0; j < C; ++j)
    for (int r = 0; r < R; ++r) {
      RowElem<T> elem{zt[j][r], T(0), T(0), j == y[r], {}};
      if constexpr (Row::uses_softmax) {
        elem.lp = (zt[j][r] - m[r]) - log_sum[r];
        elem.p = e[j][r] * inv_sum[r];
      }
      T g = p_coef[r] * elem.p;
      if constexpr (Row::uses_extra) {
        if constexpr (Row::uses_psum) elem.terms = {term0[j][r], term1[j][r]};
        g += Row::extra(desc, RowCoef<T>{T(0), p_coef[r], T(0), c0[r]}, C_t, elem);
      }
      e[j][r] = scale_t * g;  // e now holds the gradient
    }
  cpu::transpose(&e[0][0], C, rows, R, grad, C);
  for (int64_t r = 0; r < rows; ++r) grad[r * C + y[r]] = T(scale * y_grad[r]);
}

}  // namespace kindling
