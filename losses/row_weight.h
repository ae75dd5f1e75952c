// The row-weight family: losses l = phi(q) of the true class's probability q = p_y alone. Their
// gradient is dl/dz = w(q) (p - e) with w(q) = -q phi'(q), so each loss supplies only phi and w.
// Inputs (RowStats): lp_y = ln q from the log-sum-exp (never ln of a probability), q, and 1 - q,
// which the drivers provide without the cancelling subtraction: from the double sum of the other
// classes' exp on the CPU ((S - e_y) / S, exact to the double's precision), as -expm1(lp_y) on
// CUDA. q ln q is q * lp_y. Formulas and decisions: docs/losses.md.
#pragma once
#include "losses/loss_desc.h"

namespace kindling {

template <typename T>
struct PhiW {
  T phi;  // the row's loss
  T w;    // its weight on (p - e)
};

// Adapts a struct with `phi_w(desc, stats)` to the generic row interface.
template <class Rule>
struct RowWeightLoss : LossRowDefaults {
  template <typename T>
  KINDLING_HD static RowCoef<T> finish(const LossDesc& d, const RowStats<T>& s) {
    const PhiW<T> r = Rule::phi_w(d, s);
    RowCoef<T> c;
    c.value = r.phi;
    c.p_coef = r.w;
    c.y_coef = -r.w;
    return c;
  }
};

// ce: l = -lp_y, w = 1.
struct CeRule {
  template <typename T>
  KINDLING_HD static PhiW<T> phi_w(const LossDesc&, const RowStats<T>& s) {
    return {-s.lp_y, T(1)};
  }
};

// lace (Shim 2025): l = -(1 - q) ln q, w = (1 - q) - q ln q.
struct LaceRule {
  template <typename T>
  KINDLING_HD static PhiW<T> phi_w(const LossDesc&, const RowStats<T>& s) {
    return {-s.one_minus_q * s.lp_y, s.one_minus_q - s.q * s.lp_y};
  }
};

// expectation (Battash et al. 2021): l = 1 - q, w = q.
struct ExpectationRule {
  template <typename T>
  KINDLING_HD static PhiW<T> phi_w(const LossDesc&, const RowStats<T>& s) {
    return {s.one_minus_q, s.q};
  }
};

// ce_expectation_mix: l = alpha CE + beta (1 - q), w = alpha + beta q.
// params: [0] alpha, [1] beta (this epoch's, from the schedule in losses/loss.cpp).
struct CeExpectationMixRule {
  template <typename T>
  KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, const RowStats<T>& s) {
    const T alpha = T(d.params[0]), beta = T(d.params[1]);
    return {-alpha * s.lp_y + beta * s.one_minus_q, alpha + beta * s.q};
  }
};

// mix_ent (Ibraheem 2025): l = c1 CE + c2 (K (1 - q) - ln(1 + d)), K = ln((1 + d) / d),
// w = c1 + c2 K q. params: [0] c1 = w1 / ln b1, [1] c2 = w2 / ln b2, [2] K, [3] ln(1 + d) (the
// constants of the floor d, computed once by the front door).
struct MixEntRule {
  template <typename T>
  KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, const RowStats<T>& s) {
    const T c1 = T(d.params[0]), c2 = T(d.params[1]), K = T(d.params[2]);
    const T log1p_floor = T(d.params[3]);
    return {-c1 * s.lp_y + c2 * (K * s.one_minus_q - log1p_floor), c1 + c2 * K * s.q};
  }
};

// focal (Lin et al. 2017): l = -alpha (1 - q)^gamma ln q,
// w = alpha [(1 - q)^gamma - gamma q (1 - q)^(gamma - 1) ln q]. At 1 - q == 0 the second term is
// 0 * inf for gamma < 1 while its limit is 0, so w is taken as its limit there.
// params: [0] gamma, [1] alpha.
struct FocalRule {
  template <typename T>
  KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, const RowStats<T>& s) {
    const T gamma = T(d.params[0]), alpha = T(d.params[1]);
    if (s.one_minus_q == T(0)) return {T(0), gamma == T(0) ? alpha : T(0)};
    // gamma = 2 (the default) without a pow call
    const T modulator = gamma == T(2) ? s.one_minus_q * s.one_minus_q : k_pow(s.one_minus_q, gamma);
    return {-alpha * modulator * s.lp_y,
            alpha * (modulator - gamma * s.q * (modulator / s.one_minus_q) * s.lp_y)};
  }
};

// poly1 (Leng et al. 2022): l = -ln q + eps (1 - q), w = 1 + eps q. params: [0] eps.
struct Poly1Rule {
  template <typename T>
  KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, const RowStats<T>& s) {
    const T eps = T(d.params[0]);
    return {-s.lp_y + eps * s.one_minus_q, T(1) + eps * s.q};
  }
};

using CeRow = RowWeightLoss<CeRule>;
using LaceRow = RowWeightLoss<LaceRule>;
using ExpectationRow = RowWeightLoss<ExpectationRule>;
using CeExpectationMixRow = RowWeightLoss<CeExpectationMixRule>;
using MixEntRow = RowWeightLoss<MixEntRule>;
using FocalRow = RowWeightLoss<FocalRule>;
using Poly1Row = RowWeightLoss<Poly1Rule>;

}  // namespace kindling
