// The composed losses: docs/losses.md's formulas, term by term, in primitive ops. Written for
// clarity, not for the numerics of losses/*.h (1 - q is a plain subtraction here).
#include "losses/composed_loss.h"

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

#include <cmath>

namespace kindling {

Tensor composed_loss(const LossDesc& desc, const Tensor& logits, const Tensor& labels) {
  const int64_t C = logits.size(1);
  const double P0 = desc.params[0], P1 = desc.params[1];
  const Tensor log_p = log_softmax(logits, 1);
  const Tensor target = one_hot(labels, C);         // e
  const Tensor log_q = sum(mul(log_p, target), 1);  // lp_y [N]
  auto q = [&] { return exp(log_q); };
  auto entropy = [&] { return neg(sum(mul(exp(log_p), log_p), 1)); };
  auto wrong_squares = [&] { return sum(mul(square(logits), sub(1.0, target)), 1); };
  switch (desc.kind) {
    case LossKind::ce:
      return mean(neg(log_q));
    case LossKind::label_smoothing: {
      const Tensor smoothed = add(mul(target, 1.0 - P0), P0 / double(C));
      return mean(neg(sum(mul(smoothed, log_p), 1)));
    }
    case LossKind::lace:
      return mean(neg(mul(sub(1.0, q()), log_q)));
    case LossKind::expectation:
      return mean(sub(1.0, q()));
    case LossKind::ce_expectation_mix:
      return mean(add(mul(neg(log_q), P0), mul(sub(1.0, q()), P1)));
    case LossKind::min_ent:
      return mean(add(mul(neg(log_q), P0), mul(entropy(), P1)));
    case LossKind::mix_ent: {
      // CE(p, e) = -sum_j p_j ln(e_j + d), straight from its definition; the desc holds
      // K = ln((1 + d) / d), so d = 1 / (e^K - 1).
      const double floor = 1.0 / std::expm1(double(desc.params[2]));
      const Tensor swapped = neg(sum(mul(exp(log_p), log(add(target, floor))), 1));
      return mean(add(mul(neg(log_q), P0), mul(swapped, P1)));
    }
    case LossKind::squentropy:
      return mean(add(neg(log_q), div(wrong_squares(), double(C - 1))));
    case LossKind::square: {
      // (1/C) sum_j (1 + (k - 1) e_j) (z_j - M e_j)^2
      const Tensor weight = add(mul(target, P0 - 1.0), 1.0);
      const Tensor gap = sub(logits, mul(target, P1));
      return mean(div(sum(mul(weight, square(gap)), 1), double(C)));
    }
    case LossKind::ngl: {
      const Tensor p = exp(log_p);
      return mean(sub(exp(sub(2.4092, mul(p, add(target, 1.0)))), cos(cos(sin(p)))));
    }
    case LossKind::focal:
      return mean(mul(neg(mul(pow(sub(1.0, q()), P0), log_q)), P1));
    case LossKind::poly1:
      return mean(add(neg(log_q), mul(sub(1.0, q()), P0)));
  }
  return Tensor();
}

}  // namespace kindling
