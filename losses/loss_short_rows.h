// The CPU driver for short rows (C <= 32, e.g. the 10 classes of MNIST and CIFAR-10): the same
// passes and precision as loss_row (losses/loss_rows.h), run on a block of rows at once so that
// the loops vectorize across rows where a 10-element row gives them nothing to work with.
#pragma once
#include "losses/loss_rows.h"

#include <cstdint>

namespace kindling {

// kRowBlock rows at a time, transposed to [C][kRowBlock] so that every pass runs over independent
// rows in its inner loop, which vectorizes however small C is (row-at-a-time loops would spend
// their time in loop overhead). z [rows, C] with labels y[r * y_stride] and
// rows <= kRowBlock -> finite[r], value[r], grad [rows, C] (may be null) = scale * dl/dz.
inline constexpr int64_t kShortRow = 32;
inline constexpr int kRowBlock = 16;
template <class Row>
void loss_short_rows(const LossDesc& desc, const float* z, int64_t C, const int64_t* y_in,
                     int64_t y_stride, int64_t rows, float* grad, double scale, double* value,
                     bool* finite) {
  using T = float;
  using Acc = double;
  constexpr int R = kRowBlock;
  // Pad to a full block with zero logits and label 0, whose results are dropped.
  T zt[kShortRow][R], e[kShortRow][R];
  int64_t y[R];
  for (int64_t r = 0; r < R; ++r) {
    y[r] = r < rows ? y_in[r * y_stride] : 0;
    for (int64_t j = 0; j < C; ++j) zt[j][r] = r < rows ? z[r * C + j] : T(0);
  }
  // Each inner loop below either computes elementwise into an array or only adds: GCC does not
  // vectorize a loop that does both (an exp beside a sum) across rows.
  // pass 1: max and finiteness per row
  T m[R], zero_sum[R] = {};
  for (int r = 0; r < R; ++r) m[r] = zt[0][r];
  for (int64_t j = 0; j < C; ++j) {
    for (int r = 0; r < R; ++r) m[r] = zt[j][r] > m[r] ? zt[j][r] : m[r];
    for (int r = 0; r < R; ++r) zero_sum[r] += T(0) * zt[j][r];
  }
  for (int r = 0; r < R; ++r) finite[r] = zero_sum[r] == T(0);
  // pass 2: exp(z - m), its sum and the z-sum
  Acc sum_exp[R], zsum[R] = {};
  for (int r = 0; r < R; ++r) sum_exp[r] = Row::uses_softmax ? Acc(0) : Acc(1);
  for (int64_t j = 0; j < C; ++j) {
    if constexpr (Row::uses_softmax) {
      for (int r = 0; r < R; ++r) e[j][r] = k_exp(zt[j][r] - m[r]);
      for (int r = 0; r < R; ++r) sum_exp[r] += Acc(e[j][r]);
    }
    if constexpr (Row::uses_zsum) {
      T term[R];
      for (int r = 0; r < R; ++r) term[r] = Row::z_term(desc, zt[j][r], j == y[r]);
      for (int r = 0; r < R; ++r) zsum[r] += Acc(term[r]);
    }
  }
  T log_sum[R], inv_sum[R];
  RowStats<Acc> stats[R];
  for (int r = 0; r < R; ++r) {
    // A non-finite row's maths is garbage and dropped; keep it from poisoning anything else.
    if (!finite[r]) sum_exp[r] = Acc(1);
    log_sum[r] = Row::uses_softmax ? k_log(T(sum_exp[r])) : T(0);
    inv_sum[r] = T(Acc(1) / sum_exp[r]);
    stats[r] = RowStats<Acc>{};
    stats[r].C = Acc(C);
    stats[r].z_y = Acc(zt[y[r]][r]);
    stats[r].lse = Acc(m[r]) + Acc(log_sum[r]);
    if constexpr (Row::uses_softmax) {
      stats[r].lp_y = (stats[r].z_y - Acc(m[r])) - Acc(log_sum[r]);
      stats[r].q = Acc(e[y[r]][r]) / sum_exp[r];
      stats[r].one_minus_q = (sum_exp[r] - Acc(e[y[r]][r])) / sum_exp[r];
    }
    stats[r].zsum = zsum[r];
  }
  // pass 3: sums over probabilities
  T term0[Row::uses_psum ? kShortRow : 1][R], term1[Row::uses_psum ? kShortRow : 1][R];
  if constexpr (Row::uses_psum) {
    Acc s0[R] = {}, s1[R] = {};
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
    for (int r = 0; r < R; ++r) stats[r].psum = {s0[r], s1[r]};
  }
  RowCoef<Acc> coef[R];
  for (int r = 0; r < R; ++r) {
    coef[r] = Row::finish(desc, stats[r]);
    value[r] = coef[r].value;
  }
  if (grad == nullptr) return;
  // pass 4: the gradient, in the transposed block, then the true class again in Acc
  T p_coef[R], c0[R];
  for (int r = 0; r < R; ++r) {
    p_coef[r] = T(coef[r].p_coef);
    c0[r] = T(coef[r].c0);
  }
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
      zt[j][r] = scale_t * g;   // zt now holds the gradient
    }
  for (int64_t r = 0; r < rows; ++r) {
    const Acc p_y = stats[r].q;
    Acc g_y = coef[r].p_coef * p_y + coef[r].y_coef;
    if constexpr (Row::uses_extra) {
      RowElem<Acc> elem{stats[r].z_y, stats[r].lp_y, p_y, true, {}};
      if constexpr (Row::uses_psum) elem.terms = Row::p_terms(desc, stats[r].lp_y, p_y, true);
      g_y += Row::extra(desc, coef[r], stats[r].C, elem);
    }
    zt[y[r]][r] = T(scale * g_y);
    for (int64_t j = 0; j < C; ++j) grad[r * C + j] = zt[j][r];
  }
}

}  // namespace kindling
