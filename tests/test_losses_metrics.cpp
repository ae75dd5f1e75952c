// Metrics: top-1/top-5 with ties, NLL, ECE binning, streaming over batches.
#include "core/error.h"
#include "core/tensor.h"
#include "losses/metrics.h"

#include <doctest/doctest.h>

#include <cmath>

using namespace kindling;

namespace {
Tensor labels_of(const std::vector<int64_t>& values) {
  return from_vector<int64_t>(values, {int64_t(values.size())}, TensorOptions{}.with_dtype(DType::i64));
}
// A two-class row whose softmax confidence in class 0 is c.
std::vector<float> two_class_row(double c) { return {float(std::log(c / (1 - c))), 0.0f}; }
}  // namespace

TEST_CASE("metrics: top-1 and top-5 with ties going to the lower index, and NLL") {
  const std::vector<float> z = {3, 1, 0, 0, 0, 0,   // label 0: first
                                0, 5, 4, 3, 2, 1,   // label 2: second
                                1, 1, 1, 1, 1, 1,   // label 3: tied, three lower indices win
                                5, 4, 3, 2, 1, 0};  // label 5: sixth
  const ClassificationMetrics m =
      classification_metrics(from_vector<float>(z, {4, 6}), labels_of({0, 2, 3, 5}));
  CHECK(m.count == 4);
  CHECK(m.top1 == 0.25);
  CHECK(m.top5 == 0.75);
  double nll = 0;
  const int64_t labels[4] = {0, 2, 3, 5};
  for (int n = 0; n < 4; ++n) {
    double sum = 0;
    for (int j = 0; j < 6; ++j) sum += std::exp(double(z[size_t(n * 6 + j)]));
    nll += std::log(sum) - z[size_t(n * 6 + labels[n])];
  }
  CHECK(m.nll == doctest::Approx(nll / 4));
  // Fewer than five classes: top-5 is always right.
  CHECK(classification_metrics(from_vector<float>({0, 1, 2}, {1, 3}), labels_of({0})).top5 == 1.0);
}

TEST_CASE("metrics: ECE with equal-width bins") {
  // Two rows at confidence 0.85 (one right, one wrong) and two at 0.62 (both right).
  std::vector<float> z;
  for (double c : {0.85, 0.85, 0.62, 0.62})
    for (float v : two_class_row(c)) z.push_back(v);
  const Tensor logits = from_vector<float>(z, {4, 2});
  const Tensor labels = labels_of({0, 1, 0, 0});
  const ClassificationMetrics m = classification_metrics(logits, labels);
  // 2/4 |0.5 - 0.85| + 2/4 |1 - 0.62| in both binnings (the two groups fall in different bins).
  CHECK(m.ece15 == doctest::Approx(0.365).epsilon(1e-5));
  CHECK(m.ece10 == doctest::Approx(0.365).epsilon(1e-5));
  MetricsAccumulator one_bin;
  one_bin.add(logits, labels);
  // One bin: |accuracy - mean confidence| = |0.75 - 0.735|.
  CHECK(one_bin.ece(1) == doctest::Approx(0.015).epsilon(1e-4));
  CHECK_THROWS_AS(one_bin.ece(0), ValueError);
  // The reliability diagram ECE sums over: bin 12 of 15 is (0.8, 0.8667], bin 9 is (0.6, 0.6667].
  REQUIRE(m.reliability.size() == 15);
  CHECK(m.reliability[12].count == 2);
  CHECK(m.reliability[12].accuracy == 0.5);
  CHECK(m.reliability[12].confidence == doctest::Approx(0.85).epsilon(1e-6));
  CHECK(m.reliability[12].low == doctest::Approx(0.8));
  CHECK(m.reliability[9].count == 2);
  CHECK(m.reliability[9].accuracy == 1.0);
  CHECK(m.reliability[9].confidence == doctest::Approx(0.62).epsilon(1e-6));
  int64_t rows = 0;
  for (const ReliabilityBin& bin : m.reliability) rows += bin.count;
  CHECK(rows == 4);
}

TEST_CASE("metrics: streaming over batches equals one pass, and NaN rows are never correct") {
  std::vector<float> z;
  for (double c : {0.95, 0.55, 0.75, 0.65, 0.85})
    for (float v : two_class_row(c)) z.push_back(v);
  const std::vector<int64_t> labels = {0, 1, 0, 1, 0};
  const ClassificationMetrics whole =
      classification_metrics(from_vector<float>(z, {5, 2}), labels_of(labels));
  MetricsAccumulator stream;
  stream.add(from_vector<float>(std::vector<float>(z.begin(), z.begin() + 4), {2, 2}), labels_of({0, 1}));
  stream.add(from_vector<float>(std::vector<float>(z.begin() + 4, z.end()), {3, 2}), labels_of({0, 1, 0}));
  CHECK(stream.count() == 5);
  CHECK(stream.top1() == whole.top1);
  CHECK(stream.top1() == 0.6);
  CHECK(stream.nll() == doctest::Approx(whole.nll));
  CHECK(stream.ece(15) == doctest::Approx(whole.ece15));
  stream.reset();
  CHECK(stream.count() == 0);

  const ClassificationMetrics with_nan =
      classification_metrics(from_vector<float>({NAN, 0, 2, 1}, {2, 2}), labels_of({0, 0}));
  CHECK(with_nan.top1 == 0.5);
  CHECK(std::isnan(with_nan.nll));
  CHECK(std::isnan(with_nan.ece15));
  CHECK(with_nan.reliability.empty());
}

TEST_CASE("metrics: input errors name the tensors and the bad label") {
  CHECK_THROWS_WITH_AS(classification_metrics(zeros({2, 3}), labels_of({0, 3})),
                       "metrics: labels[1] = 3 is outside [0, 3) for logits f32[2,3] on cpu", ValueError);
  CHECK_THROWS_WITH_AS(classification_metrics(zeros({2, 3}), labels_of({0})),
                       "metrics: needs logits [N,C] and labels [N]; got logits f32[2,3] on cpu and "
                       "labels i64[1] on cpu",
                       ShapeError);
  CHECK_THROWS_AS(classification_metrics(zeros({2, 3}), zeros({2})), DTypeError);
}
