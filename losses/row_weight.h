// The row-weight family: losses l = phi(q) of the true class's probability q = p_y alone. Their
// gradient is dl/dz = w(q) (p - e) with w(q) = -q phi'(q), so each loss supplies only phi and w, as
// functions of lp_y = ln q (never ln of a probability). Numerics: 1 - q is -expm1(lp_y), q ln q is
// exp(lp_y) * lp_y. Formulas and decisions: docs/losses.md.
#pragma once
#include "losses/loss_desc.h"

namespace kindling {

template <typename T> struct PhiW {
  T phi;   // the row's loss
  T w;     // its weight on (p - e)
};

// Adapts a struct with `phi_w(desc, lp_y)` to the generic row interface.
template <class Rule> struct RowWeightLoss : LossRowDefaults {
  template <typename T> KINDLING_HD static RowCoef<T> finish(const LossDesc& d, const RowStats<T>& s) {
    const PhiW<T> r = Rule::phi_w(d, s.lp_y);
    RowCoef<T> c;
    c.value = r.phi;
    c.p_coef = r.w;
    c.y_coef = -r.w;
    return c;
  }
};

// ce: l = -lp_y, w = 1.
struct CeRule {
  template <typename T> KINDLING_HD static PhiW<T> phi_w(const LossDesc&, T lp_y) {
    return {-lp_y, T(1)};
  }
};

// lace (Shim 2025): l = -(1 - q) ln q, w = (1 - q) - q ln q.
struct LaceRule {
  template <typename T> KINDLING_HD static PhiW<T> phi_w(const LossDesc&, T lp_y) {
    const T one_minus_q = -k_expm1(lp_y);
    return {-one_minus_q * lp_y, one_minus_q - k_exp(lp_y) * lp_y};
  }
};

// expectation (Battash et al. 2021): l = 1 - q, w = q.
struct ExpectationRule {
  template <typename T> KINDLING_HD static PhiW<T> phi_w(const LossDesc&, T lp_y) {
    return {-k_expm1(lp_y), k_exp(lp_y)};
  }
};

// ce_expectation_mix: l = alpha CE + beta (1 - q), w = alpha + beta q.
// params: [0] alpha, [1] beta (this epoch's, from the schedule in losses/loss.cpp).
struct CeExpectationMixRule {
  template <typename T> KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, T lp_y) {
    const T alpha = T(d.params[0]), beta = T(d.params[1]);
    return {-alpha * lp_y - beta * k_expm1(lp_y), alpha + beta * k_exp(lp_y)};
  }
};

// mix_ent (Ibraheem 2025): l = c1 CE + c2 (-ln(1 + d) + K (1 - q)), K = ln((1 + d) / d),
// w = c1 + c2 K q. params: [0] c1 = w1 / ln b1, [1] c2 = w2 / ln b2, [2] the floor d.
struct MixEntRule {
  template <typename T> KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, T lp_y) {
    const T c1 = T(d.params[0]), c2 = T(d.params[1]), floor = T(d.params[2]);
    const T K = k_log1p(T(1) / floor);
    return {-c1 * lp_y + c2 * (-k_log1p(floor) - K * k_expm1(lp_y)),
            c1 + c2 * K * k_exp(lp_y)};
  }
};

// focal (Lin et al. 2017): l = -alpha (1 - q)^gamma ln q,
// w = alpha [(1 - q)^gamma - gamma q (1 - q)^(gamma - 1) ln q]. At 1 - q == 0 the second term is
// 0 * inf for gamma < 1 while its limit is 0, so w is taken as its limit there.
// params: [0] gamma, [1] alpha.
struct FocalRule {
  template <typename T> KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, T lp_y) {
    const T gamma = T(d.params[0]), alpha = T(d.params[1]);
    const T one_minus_q = -k_expm1(lp_y);
    if (one_minus_q == T(0)) return {T(0), gamma == T(0) ? alpha : T(0)};
    const T modulator = k_pow(one_minus_q, gamma);
    const T q = k_exp(lp_y);
    return {-alpha * modulator * lp_y,
            alpha * (modulator - gamma * q * (modulator / one_minus_q) * lp_y)};
  }
};

// poly1 (Leng et al. 2022): l = -ln q + eps (1 - q), w = 1 + eps q. params: [0] eps.
struct Poly1Rule {
  template <typename T> KINDLING_HD static PhiW<T> phi_w(const LossDesc& d, T lp_y) {
    const T eps = T(d.params[0]);
    return {-lp_y - eps * k_expm1(lp_y), T(1) + eps * k_exp(lp_y)};
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
