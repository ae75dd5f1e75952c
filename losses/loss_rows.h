// The generic row driver and the dispatch from LossKind to a loss's row maths. The CPU kernel
// (ops/cpu/loss.cpp) runs loss_row over each row of more than 32 classes and loss_short_rows
// (losses/loss_short_rows.h) over blocks of shorter rows; the CUDA kernel (ops/cuda/loss.cu) runs
// the same passes with a warp per row; the tests instantiate loss_row in double as a precise
// reference.
#pragma once
#include "losses/label_smoothing.h"
#include "losses/loss_desc.h"
#include "losses/min_ent.h"
#include "losses/ngl.h"
#include "losses/row_weight.h"
#include "losses/square.h"
#include "losses/squentropy.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace kindling {

// Calls visit(RowStruct{}) with the row-maths struct of `kind` (host code: the kernels' launchers).
template <class Visitor>
decltype(auto) visit_loss(LossKind kind, Visitor&& visit) {
  switch (kind) {
#define KINDLING_LOSS_CASE(kind, Row) \
  case LossKind::kind:                \
    return visit(Row{});
    KINDLING_LOSS_KINDS(KINDLING_LOSS_CASE)
#undef KINDLING_LOSS_CASE
  }
  return visit(CeRow{});  // unreachable: the switch covers KINDLING_LOSS_KINDS
}

// Sums term(j) over j in [0, n) in `Sum` with kRowLanes independent partial sums. One running sum
// is a chain of dependent adds that the compiler may not reorder without -ffast-math, so it would
// not vectorize; the lanes fix an order that vectorizes (the same order on every call).
inline constexpr int kRowLanes = 8;
template <typename Sum, class Term>
Sum lane_sum(int64_t n, Term term) {
  if (n < 2 * kRowLanes) {  // short rows (C = 10): setting up the lanes costs more than it saves
    Sum total{};
    for (int64_t j = 0; j < n; ++j) total += term(j);
    return total;
  }
  Sum lanes[kRowLanes] = {};
  int64_t j = 0;
  for (; j + kRowLanes <= n; j += kRowLanes)
    for (int k = 0; k < kRowLanes; ++k) lanes[k] += term(j + k);
  Sum total{};
  for (; j < n; ++j) total += term(j);
  for (int k = 0; k < kRowLanes; ++k) total += lanes[k];
  return total;
}

// max_j z[j], and whether every z[j] is finite (sum_j 0 * z[j] is 0 exactly then, NaN otherwise).
template <typename T>
bool row_max_if_finite(const T* z, int64_t n, T* max_out) {
  if (n < 2 * kRowLanes) {
    T m = z[0], zero_sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      m = z[j] > m ? z[j] : m;
      zero_sum += T(0) * z[j];
    }
    *max_out = m;
    return zero_sum == T(0);
  }
  T lanes[kRowLanes];
  for (int k = 0; k < kRowLanes; ++k) lanes[k] = z[0];
  int64_t j = 0;
  for (; j + kRowLanes <= n; j += kRowLanes)
    for (int k = 0; k < kRowLanes; ++k) lanes[k] = z[j + k] > lanes[k] ? z[j + k] : lanes[k];
  T m = z[0];
  for (; j < n; ++j) m = z[j] > m ? z[j] : m;
  for (int k = 0; k < kRowLanes; ++k) m = lanes[k] > m ? lanes[k] : m;
  *max_out = m;
  return lane_sum<T>(n, [&](int64_t i) { return T(0) * z[i]; }) == T(0);
}

// A per-thread buffer of at least `count` elements, reused from row to row.
template <typename T>
T* row_scratch(int64_t count) {
  thread_local std::vector<T> scratch;
  if (scratch.size() < size_t(count)) scratch.resize(size_t(count));
  return scratch.data();
}

// One row, serially: z [C] with label y (0 <= y < C) -> returns false if some z_j is not finite,
// else writes the row's loss to *value and grad [C] = scale * dl/dz. Elementwise maths in T, row
// sums and the per-row coefficients in Acc: the CPU kernel runs <float, double>, the tests'
// reference <double, double>. grad may be null (no gradient wanted); else it doubles as scratch
// for exp(z_j - m) and must not alias z. Host code only (the CUDA kernel has its own passes).
template <class Row, typename T, typename Acc>
bool loss_row(const LossDesc& desc, const T* z, int64_t C, int64_t y, T* grad, Acc scale, Acc* value) {
  // pass 1: the max, and whether every logit is finite (an Inf would turn the max into NaN maths)
  T m;
  if (!row_max_if_finite(z, C, &m)) return false;
  // Scratch: exp(z_j - m) when there is no grad to hold it, then the loss's two p-terms per class
  // (stored, so that the loop computing them has no reduction in it and vectorizes).
  const bool want_grad = grad != nullptr;
  T* scratch = row_scratch<T>((want_grad ? 0 : C) + (Row::uses_psum ? 2 * C : 0));
  if (!want_grad) {
    grad = scratch;
    scratch += C;
  }

  RowStats<Acc> stats{};
  stats.C = Acc(C);
  stats.z_y = Acc(z[y]);
  // pass 2: exp(z_j - m), kept in grad for the later passes, and its sum; the loss's z-sum
  Acc sum_exp = Acc(1), log_sum_exp = Acc(0);
  if constexpr (Row::uses_softmax) {
    for (int64_t j = 0; j < C; ++j) grad[j] = k_exp(z[j] - m);
    sum_exp = lane_sum<Acc>(C, [&](int64_t j) { return Acc(grad[j]); });
    log_sum_exp = Acc(k_log(T(sum_exp)));  // S is in [1, C]: T's log is accurate enough
    stats.lse = Acc(m) + log_sum_exp;
    stats.lp_y = (stats.z_y - Acc(m)) - log_sum_exp;
    // S - e_y is the double sum of the other classes' exp, up to rounding of a double: no
    // cancellation at the float level when q is near 1.
    stats.q = Acc(grad[y]) / sum_exp;
    stats.one_minus_q = (sum_exp - Acc(grad[y])) / sum_exp;
  }
  if constexpr (Row::uses_zsum)
    stats.zsum = lane_sum<Acc>(C, [&](int64_t j) { return Acc(Row::z_term(desc, z[j], j == y)); });
  // lp_j = (z_j - m) - ln S: both parts are accurate in T, where z_j - lse would round lse.
  const T log_sum = T(log_sum_exp);
  const T inv_sum = T(Acc(1) / sum_exp);
  // pass 3: sums over probabilities
  if constexpr (Row::uses_psum) {
    T* term0 = scratch;
    T* term1 = scratch + C;
    for (int64_t j = 0; j < C; ++j) {
      const RowSums<T> t = Row::p_terms(desc, (z[j] - m) - log_sum, grad[j] * inv_sum, j == y);
      term0[j] = t.s0;
      term1[j] = t.s1;
    }
    stats.psum.s0 = lane_sum<Acc>(C, [&](int64_t j) { return Acc(term0[j]); });
    stats.psum.s1 = lane_sum<Acc>(C, [&](int64_t j) { return Acc(term1[j]); });
  }
  const RowCoef<Acc> coef = Row::finish(desc, stats);
  *value = coef.value;
  if (!want_grad) return true;
  const Acc p_y = stats.q;
  // pass 4: the gradient, p_coef * p_j + extra_j (+ y_coef on the true class)
  if constexpr (Row::uses_extra) {
    const RowCoef<T> coef_t{T(coef.value), T(coef.p_coef), T(coef.y_coef), T(coef.c0)};
    const T scale_t = T(scale), C_t = T(C);
    const T* term0 = scratch;
    const T* term1 = scratch + C;
    for (int64_t j = 0; j < C; ++j) {
      RowElem<T> elem{z[j], T(0), T(0), j == y, {}};
      if constexpr (Row::uses_softmax) {
        elem.lp = (z[j] - m) - log_sum;
        elem.p = grad[j] * inv_sum;
      }
      if constexpr (Row::uses_psum) elem.terms = {term0[j], term1[j]};
      grad[j] = scale_t * (coef_t.p_coef * elem.p + Row::extra(desc, coef_t, C_t, elem));
    }
  } else {
    const T p_scale = T(scale * coef.p_coef / sum_exp);
    for (int64_t j = 0; j < C; ++j) grad[j] = p_scale * grad[j];
  }
  // The true class again in Acc, where its terms (p_y - 1 for CE) cancel.
  Acc g_y = coef.p_coef * p_y + coef.y_coef;
  if constexpr (Row::uses_extra) {
    RowElem<Acc> elem{stats.z_y, stats.lp_y, p_y, true, {}};
    if constexpr (Row::uses_psum) elem.terms = Row::p_terms(desc, stats.lp_y, p_y, true);
    g_y += Row::extra(desc, coef, stats.C, elem);
  }
  grad[y] = T(scale * g_y);
  return true;
}

}  // namespace kindling
