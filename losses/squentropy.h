// squentropy (Hui, Belkin, Wright 2023): CE plus the mean square of the wrong-class logits.
// l = -lp_y + (1 / (C - 1)) sum_{j != y} z_j^2;  dl/dz_j = p_j - e_j + [j != y] 2 z_j / (C - 1).
// Needs C >= 2 (checked by the front door). No hyperparameters.
#pragma once
#include "losses/loss_desc.h"

namespace kindling {

struct SquentropyRow : LossRowDefaults {
  static constexpr bool uses_zsum = true;
  static constexpr bool uses_extra = true;
  template <typename T>
  KINDLING_HD static T z_term(const LossDesc&, T z, bool is_y) {
    return is_y ? T(0) : z * z;
  }
  template <typename T>
  KINDLING_HD static RowCoef<T> finish(const LossDesc&, const RowStats<T>& s) {
    RowCoef<T> c;
    c.c0 = T(1) / (s.C - T(1));
    c.value = -s.lp_y + s.zsum * c.c0;
    c.p_coef = T(1);
    c.y_coef = T(-1);
    return c;
  }
  template <typename T>
  KINDLING_HD static T extra(const LossDesc&, const RowCoef<T>& c, T, const RowElem<T>& e) {
    return e.is_y ? T(0) : T(2) * e.z * c.c0;
  }
};

}  // namespace kindling
