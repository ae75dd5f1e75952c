// square (Hui & Belkin 2021): the rescaled square loss on raw logits, no softmax.
// l = (1/C) [k (z_y - M)^2 + sum_{j != y} z_j^2];  dl/dz_j = (2/C) (j == y ? k (z_j - M) : z_j).
// params: [0] k, [1] M (the front door picks the class-count defaults: docs/losses.md).
#pragma once
#include "losses/loss_desc.h"

namespace kindling {

struct SquareRow : LossRowDefaults {
  static constexpr bool uses_softmax = false;
  static constexpr bool uses_zsum = true;
  static constexpr bool uses_extra = true;
  template <typename T>
  KINDLING_HD static T z_term(const LossDesc&, T z, bool is_y) {
    return is_y ? T(0) : z * z;
  }
  template <typename T>
  KINDLING_HD static RowCoef<T> finish(const LossDesc& d, const RowStats<T>& s) {
    const T k = T(d.params[0]), M = T(d.params[1]);
    const T true_gap = s.z_y - M;
    RowCoef<T> c;
    c.value = (k * true_gap * true_gap + s.zsum) / s.C;
    c.c0 = T(2) / s.C;
    return c;
  }
  template <typename T>
  KINDLING_HD static T extra(const LossDesc& d, const RowCoef<T>& c, T, const RowElem<T>& e) {
    return e.is_y ? c.c0 * T(d.params[0]) * (e.z - T(d.params[1])) : c.c0 * e.z;
  }
};

}  // namespace kindling
