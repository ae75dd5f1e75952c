// ngl, the Next Generation Loss (Akhmedova & Koerber 2024), on softmax probabilities (the
// authors' PyTorch code; their TensorFlow example's extra sigmoid is not applied).
// Row value: the mean over the C classes of f(p_j, e_j) = exp(2.4092 - p_j (1 + e_j)) -
// cos(cos(sin p_j)), so the batch mean of rows is the mean over all N*C elements.
// u_j = df/dp_j = -(1 + e_j) exp(2.4092 - p_j (1 + e_j)) - sin(cos(sin p_j)) sin(sin p_j) cos p_j,
// then the softmax backward: dl/dz_j = p_j (u_j - sum_i p_i u_i) / C. Every term is bounded.
// Its minimum is not at p_y = 1 (p_y ~ 0.391 at C = 10): never expect confident outputs.
#pragma once
#include "losses/loss_desc.h"

namespace kindling {

// sin and cos on [-1, 1], where all of NGL's arguments lie (p, sin p, cos sin p are in [0, 1]):
// Taylor polynomials to x^17 and x^18 in nested form, truncation error below 1e-17, so they serve
// the double reference too; branch-free, so the CPU loops over them vectorize.
template <typename T>
KINDLING_HD inline T sin_unit(T x) {
  const T x2 = x * x;
  T s = T(1) - x2 * T(1.0 / 272);
  s = T(1) - x2 * T(1.0 / 210) * s;
  s = T(1) - x2 * T(1.0 / 156) * s;
  s = T(1) - x2 * T(1.0 / 110) * s;
  s = T(1) - x2 * T(1.0 / 72) * s;
  s = T(1) - x2 * T(1.0 / 42) * s;
  s = T(1) - x2 * T(1.0 / 20) * s;
  s = T(1) - x2 * T(1.0 / 6) * s;
  return x * s;
}
template <typename T>
KINDLING_HD inline T cos_unit(T x) {
  const T x2 = x * x;
  T c = T(1) - x2 * T(1.0 / 306);
  c = T(1) - x2 * T(1.0 / 240) * c;
  c = T(1) - x2 * T(1.0 / 182) * c;
  c = T(1) - x2 * T(1.0 / 132) * c;
  c = T(1) - x2 * T(1.0 / 90) * c;
  c = T(1) - x2 * T(1.0 / 56) * c;
  c = T(1) - x2 * T(1.0 / 30) * c;
  c = T(1) - x2 * T(1.0 / 12) * c;
  return T(1) - x2 * T(1.0 / 2) * c;
}

struct NglRow : LossRowDefaults {
  static constexpr bool uses_psum = true;
  static constexpr bool uses_extra = true;
  static constexpr double kOffset = 2.4092;

  template <typename T>
  struct Terms {
    T f, u;
  };
  // f and u together: they share exp(2.4092 - p (1 + e)), sin p and cos(sin p).
  template <typename T>
  KINDLING_HD static Terms<T> terms(T p, bool is_y) {
    const T scale = is_y ? T(2) : T(1);
    const T decay = k_exp(T(kOffset) - p * scale);
    const T sin_p = sin_unit(p), cos_sin_p = cos_unit(sin_p);
    return {decay - cos_unit(cos_sin_p),
            -scale * decay - sin_unit(cos_sin_p) * sin_unit(sin_p) * cos_unit(p)};
  }
  // psum.s0 = sum_j f_j, psum.s1 = sum_j p_j u_j.
  template <typename T>
  KINDLING_HD static RowSums<T> p_terms(const LossDesc&, T, T p, bool is_y) {
    const Terms<T> t = terms(p, is_y);
    return {t.f, p * t.u};
  }
  template <typename T>
  KINDLING_HD static RowCoef<T> finish(const LossDesc&, const RowStats<T>& s) {
    RowCoef<T> c;
    c.c0 = T(1) / s.C;
    c.value = s.psum.s0 * c.c0;
    c.p_coef = -s.psum.s1 * c.c0;
    return c;
  }
  template <typename T>
  KINDLING_HD static T extra(const LossDesc&, const RowCoef<T>& c, T, const RowElem<T>& e) {
    return c.c0 * e.terms.s1;  // p_j u_j / C
  }
};

}  // namespace kindling
