// label_smoothing: CE against t = (1 - eps) e + eps / C (PyTorch's convention: the true class gets
// eps / C too). l = -sum_j t_j lp_j = -(1 - eps) lp_y + eps (lse - mean_j z_j), using
// sum_j lp_j = sum_j z_j - C lse; the mean form keeps the difference well conditioned.
// dl/dz = p - t. params: [0] eps.
#pragma once
#include "losses/loss_desc.h"

namespace kindling {

struct LabelSmoothingRow : LossRowDefaults {
  static constexpr bool uses_zsum = true;
  static constexpr bool uses_extra = true;
  template <typename T>
  KINDLING_HD static T z_term(const LossDesc&, T z, bool) {
    return z;
  }
  template <typename T>
  KINDLING_HD static RowCoef<T> finish(const LossDesc& d, const RowStats<T>& s) {
    const T eps = T(d.params[0]);
    RowCoef<T> c;
    c.value = -(T(1) - eps) * s.lp_y + eps * (s.lse - s.zsum / s.C);
    c.p_coef = T(1);
    c.y_coef = -(T(1) - eps);
    c.c0 = -eps / s.C;  // every class's share of the smoothing mass
    return c;
  }
  template <typename T>
  KINDLING_HD static T extra(const LossDesc&, const RowCoef<T>& c, T, const RowElem<T>&) {
    return c.c0;
  }
};

}  // namespace kindling
