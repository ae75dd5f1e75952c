// Temperature scaling: the fit finds a known optimum, never raises the NLL of the set it is fitted
// on, leaves accuracy alone, and stays inside its bounds.
#include "core/error.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "losses/metrics.h"
#include "losses/temperature.h"

#include <doctest/doctest.h>

#include <cmath>

using namespace kindling;

namespace {
Tensor labels_of(const std::vector<int64_t>& values) {
  return from_vector<int64_t>(values, {int64_t(values.size())}, TensorOptions{}.with_dtype(DType::i64));
}

// N rows of C classes: logits z drawn from N(0, spread^2) and each label drawn from softmax(z), so
// the logits z are calibrated; the returned logits are k z.
struct Sample {
  Tensor logits, labels;
};
Sample calibrated_times(double k, int64_t N, int64_t C, uint64_t seed) {
  Generator generator(seed);
  std::vector<float> z(size_t(N * C));
  std::vector<int64_t> y(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> p(static_cast<size_t>(C));
    double sum = 0;
    for (int64_t j = 0; j < C; ++j) {
      const double v = 2.0 * generator.normal();
      z[size_t(n * C + j)] = float(k * v);
      sum += p[size_t(j)] = std::exp(v);
    }
    double u = generator.uniform() * sum;
    int64_t label = C - 1;
    for (int64_t j = 0; j < C; ++j)
      if ((u -= p[size_t(j)]) < 0) {
        label = j;
        break;
      }
    y[size_t(n)] = label;
  }
  return {from_vector<float>(z, {N, C}), labels_of(y)};
}
}  // namespace

TEST_CASE("temperature: an exact optimum, k times a calibrated binary model") {
  // Rows [k ln 3, 0] with label 0 in 3 of 4: the NLL is least where softmax gives class 0 p = 3/4,
  // that is at T = k.
  for (double k : {0.25, 1.0, 3.0, 40.0}) {
    const float a = float(k * std::log(3.0));
    const Tensor logits = from_vector<float>({a, 0, a, 0, a, 0, a, 0}, {4, 2});
    const Tensor labels = labels_of({0, 0, 1, 0});
    const double T = fit_temperature(logits, labels);
    CHECK(T == doctest::Approx(k).epsilon(1e-6));
    const double nll_at_fit = nll_at_temperature(logits, labels, T);
    CHECK(nll_at_fit == doctest::Approx(-(0.75 * std::log(0.75) + 0.25 * std::log(0.25))).epsilon(1e-9));
    CHECK(nll_at_fit < nll_at_temperature(logits, labels, T * 1.01));
    CHECK(nll_at_fit < nll_at_temperature(logits, labels, T / 1.01));
  }
}

TEST_CASE("temperature: k times calibrated logits of many classes give T near k, accuracy unchanged") {
  for (double k : {0.5, 2.0, 5.0}) {
    const Sample s = calibrated_times(k, 20000, 10, 7);
    const double T = fit_temperature(s.logits, s.labels);
    CHECK(T == doctest::Approx(k).epsilon(0.05));
    const double raw = nll_at_temperature(s.logits, s.labels, 1.0);
    CHECK(nll_at_temperature(s.logits, s.labels, T) <= raw);
    const Tensor scaled = scale_logits(s.logits, T);
    const ClassificationMetrics before = classification_metrics(s.logits, s.labels);
    const ClassificationMetrics after = classification_metrics(scaled, s.labels);
    CHECK(after.top1 == before.top1);
    CHECK(after.top5 == before.top5);
    CHECK(after.nll == doctest::Approx(nll_at_temperature(s.logits, s.labels, T)).epsilon(1e-5));
    CHECK(after.ece15 < 0.02);  // calibrated again, up to the sampling noise of 20000 rows
    if (k != 1.0) CHECK(before.ece15 > 0.05);
  }
}

TEST_CASE("temperature: the fit is deterministic and never raises the NLL of the set it was fitted on") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    const Sample s = calibrated_times(1.0 + double(seed), 500, 5, seed);
    const double T = fit_temperature(s.logits, s.labels);
    CHECK(fit_temperature(s.logits, s.labels) == T);
    CHECK(nll_at_temperature(s.logits, s.labels, T) <= nll_at_temperature(s.logits, s.labels, 1.0));
  }
}

TEST_CASE("temperature: bounds, non-finite logits and bad input") {
  // Every row right with a margin: the NLL falls as T falls, down to the smallest temperature.
  CHECK(fit_temperature(from_vector<float>({2, 0, 0, 2}, {2, 2}), labels_of({0, 1})) == kMinTemperature);
  // Logits that point away from the labels: the best T > 0 is the largest (almost uniform).
  CHECK(fit_temperature(from_vector<float>({0, 2, 2, 0}, {2, 2}), labels_of({0, 1})) == kMaxTemperature);
  CHECK(std::isnan(fit_temperature(from_vector<float>({NAN, 0, 1, 0}, {2, 2}), labels_of({0, 1}))));
  CHECK_THROWS_WITH_AS(fit_temperature(zeros({2, 3}), labels_of({0, 3})),
                       "temperature: labels[1] = 3 is outside [0, 3) for logits f32[2,3] on cpu", ValueError);
  CHECK_THROWS_AS(fit_temperature(zeros({0, 3}), labels_of({})), ShapeError);
  CHECK_THROWS_AS(fit_temperature(zeros({2, 3}), zeros({2})), DTypeError);
  CHECK_THROWS_AS(nll_at_temperature(zeros({1, 2}), labels_of({0}), 0.0), ValueError);
  CHECK_THROWS_AS(scale_logits(zeros({1, 2}), NAN), ValueError);
}
