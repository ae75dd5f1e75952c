// Temperature fitting on the host, in double. With b = 1/T and per row z (logits), y (label),
//   f(b)  = mean_n [ lse(b z_n) - b z_n,y ]                  (the NLL at T = 1/b)
//   f'(b) = mean_n [ sum_j p_nj z_nj - z_n,y ],  p_n = softmax(b z_n)
//   f''(b) = mean_n Var_{p_n}(z_n) >= 0, so f is convex in b and f' is non-decreasing.
#include "losses/temperature.h"

#include "core/error.h"
#include "losses/metrics.h"

#include <cmath>
#include <vector>

namespace kindling {

namespace {

struct HostLogits {
  int64_t rows = 0, classes = 0;
  std::vector<float> z;
  std::vector<int64_t> y;
  bool finite = true;
};

HostLogits to_host(const Tensor& logits, const Tensor& labels) {
  KINDLING_CHECK(logits.defined() && labels.defined() && logits.dim() == 2 && labels.dim() == 1 &&
                     labels.size(0) == logits.size(0) && logits.size(0) > 0 && logits.size(1) > 0,
                 ShapeError, "temperature: needs logits [N,C] and labels [N] with N, C >= 1; got {} and {}",
                 logits.defined() ? logits.describe() : "undefined",
                 labels.defined() ? labels.describe() : "undefined");
  KINDLING_CHECK(logits.dtype() == DType::f32 && labels.dtype() == DType::i64, DTypeError,
                 "temperature: needs logits f32 and labels i64; got {} and {}", logits.describe(),
                 labels.describe());
  HostLogits h;
  h.rows = logits.size(0);
  h.classes = logits.size(1);
  h.z = logits.to_vector<float>();
  h.y = host_labels("temperature", labels, logits);
  for (float v : h.z) h.finite &= std::isfinite(v);
  return h;
}

// f(b) and f'(b) as in the header comment, in row order.
struct NllAndSlope {
  double nll = 0, slope = 0;
};
NllAndSlope evaluate(const HostLogits& h, double inverse_temperature) {
  NllAndSlope out;
  for (int64_t n = 0; n < h.rows; ++n) {
    const float* row = h.z.data() + n * h.classes;
    double m = -INFINITY;
    for (int64_t j = 0; j < h.classes; ++j) m = std::max(m, inverse_temperature * row[j]);
    double sum = 0, weighted = 0;
    for (int64_t j = 0; j < h.classes; ++j) {
      const double e = std::exp(inverse_temperature * row[j] - m);
      sum += e;
      weighted += e * row[j];
    }
    const double z_y = row[h.y[size_t(n)]];
    out.nll += m + std::log(sum) - inverse_temperature * z_y;
    out.slope += weighted / sum - z_y;
  }
  out.nll /= double(h.rows);
  out.slope /= double(h.rows);
  return out;
}

}  // namespace

double nll_at_temperature(const Tensor& logits, const Tensor& labels, double temperature) {
  KINDLING_CHECK(std::isfinite(temperature) && temperature > 0, ValueError,
                 "temperature: must be finite and above 0, got {}", temperature);
  return evaluate(to_host(logits, labels), 1.0 / temperature).nll;
}

double fit_temperature(const Tensor& logits, const Tensor& labels) {
  const HostLogits h = to_host(logits, labels);
  if (!h.finite) return NAN;
  // Bracket the zero of f' in b = 1/T; a bound is the answer when f' does not change sign.
  double low = 1.0 / kMaxTemperature, high = 1.0 / kMinTemperature;
  if (evaluate(h, low).slope >= 0) return kMaxTemperature;
  if (evaluate(h, high).slope <= 0) return kMinTemperature;
  while (high / low > 1.0 + 1e-12) {
    const double middle = std::sqrt(low * high);  // bisection of log b
    (evaluate(h, middle).slope < 0 ? low : high) = middle;
  }
  return 2.0 / (low + high);
}

Tensor scale_logits(const Tensor& logits, double temperature) {
  KINDLING_CHECK(std::isfinite(temperature) && temperature > 0, ValueError,
                 "temperature: must be finite and above 0, got {}", temperature);
  KINDLING_CHECK(logits.defined() && logits.dtype() == DType::f32, DTypeError,
                 "temperature: needs f32 logits; got {}", logits.defined() ? logits.describe() : "undefined");
  std::vector<float> z = logits.to_vector<float>();
  for (float& v : z) v = float(double(v) / temperature);
  return from_vector<float>(z, logits.shape());
}

}  // namespace kindling
