// min_ent (Ibraheem 2025): L = c1 CE + c2 H(p), H = -sum_j p_j lp_j, c_i = w_i / ln b_i.
// dl/dz_j = c1 (p_j - e_j) - c2 p_j (lp_j + H)
//         = (c1 - c2 H) p_j - c1 e_j - c2 p_j lp_j.
// params: [0] c1, [1] c2.
#pragma once
#include "losses/loss_desc.h"

namespace kindling {

struct MinEntRow : LossRowDefaults {
  static constexpr bool uses_psum = true;
  static constexpr bool uses_extra = true;
  // psum.s0 = H. A p_j that underflowed to 0 contributes 0 * lp_j = 0, the right limit.
  template <typename T>
  KINDLING_HD static RowSums<T> p_terms(const LossDesc&, T lp, T p, bool) {
    return {-p * lp, T(0)};
  }
  template <typename T>
  KINDLING_HD static RowCoef<T> finish(const LossDesc& d, const RowStats<T>& s) {
    const T c1 = T(d.params[0]), c2 = T(d.params[1]);
    const T entropy = s.psum.s0;
    RowCoef<T> c;
    c.value = -c1 * s.lp_y + c2 * entropy;
    c.p_coef = c1 - c2 * entropy;
    c.y_coef = -c1;
    c.c0 = c2;
    return c;
  }
  template <typename T>
  KINDLING_HD static T extra(const LossDesc&, const RowCoef<T>& c, T, const RowElem<T>& e) {
    return c.c0 * e.terms.s0;  // -c2 p_j lp_j
  }
};

}  // namespace kindling
