// Metrics on the host, in double: each row's rank of its label, -ln p_y and max p.
#include "losses/metrics.h"

#include "core/error.h"
#include "core/parallel.h"

#include <algorithm>
#include <cmath>

namespace kindling {

std::vector<int64_t> host_labels(const char* who, const Tensor& labels, const Tensor& logits) {
  const int64_t C = logits.size(1);
  std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (size_t n = 0; n < y.size(); ++n)
    KINDLING_CHECK(y[n] >= 0 && y[n] < C, ValueError, "{}: labels[{}] = {} is outside [0, {}) for logits {}",
                   who, n, y[n], C, logits.describe());
  return y;
}

void MetricsAccumulator::add(const Tensor& logits, const Tensor& labels) {
  KINDLING_CHECK(logits.defined() && labels.defined() && logits.dim() == 2 && labels.dim() == 1 &&
                     labels.size(0) == logits.size(0),
                 ShapeError, "metrics: needs logits [N,C] and labels [N]; got logits {} and labels {}",
                 logits.defined() ? logits.describe() : "undefined",
                 labels.defined() ? labels.describe() : "undefined");
  KINDLING_CHECK(logits.dtype() == DType::f32 && labels.dtype() == DType::i64, DTypeError,
                 "metrics: needs logits f32 and labels i64; got logits {} and labels {}", logits.describe(),
                 labels.describe());
  const int64_t N = logits.size(0), C = logits.size(1);
  const std::vector<float> z = logits.to_vector<float>();
  const std::vector<int64_t> y = host_labels("metrics", labels, logits);

  std::vector<int64_t> rank(static_cast<size_t>(N));
  std::vector<double> nll(static_cast<size_t>(N));
  const size_t first = confidence_.size();
  confidence_.resize(first + size_t(N));
  correct_.resize(first + size_t(N));
  parallel_for(0, N, std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      const float* row = z.data() + n * C;
      const int64_t label = y[size_t(n)];
      const float z_y = row[label];
      double m = row[0], sum = 0;
      int64_t beaten_by = 0;
      bool has_nan = false;
      for (int64_t j = 0; j < C; ++j) {
        m = std::max(m, double(row[j]));
        beaten_by += row[j] > z_y || (row[j] == z_y && j < label);
        has_nan |= std::isnan(row[j]);
      }
      if (has_nan) {  // a NaN row is never correct; its NLL and confidence are NaN
        beaten_by = C;
        m = NAN;
      }
      for (int64_t j = 0; j < C; ++j) sum += std::exp(double(row[j]) - m);
      rank[size_t(n)] = beaten_by;
      nll[size_t(n)] = m + std::log(sum) - z_y;
      confidence_[first + size_t(n)] = float(1.0 / sum);  // max_j p_j = exp(m - lse)
      correct_[first + size_t(n)] = beaten_by == 0;
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    top1_hits_ += rank[size_t(n)] < 1;
    top5_hits_ += rank[size_t(n)] < 5;
    nll_sum_ += nll[size_t(n)];
  }
  count_ += N;
}

double MetricsAccumulator::top1() const { return count_ ? double(top1_hits_) / double(count_) : 0.0; }
double MetricsAccumulator::top5() const { return count_ ? double(top5_hits_) / double(count_) : 0.0; }
double MetricsAccumulator::nll() const { return count_ ? nll_sum_ / double(count_) : 0.0; }

std::vector<ReliabilityBin> MetricsAccumulator::reliability(int bins) const {
  KINDLING_CHECK(bins >= 1, ValueError, "metrics: a reliability diagram needs at least one bin, got {}",
                 bins);
  std::vector<double> confidence_sum(size_t(bins), 0.0), correct_sum(size_t(bins), 0.0);
  std::vector<int64_t> count(size_t(bins), 0);
  for (size_t i = 0; i < confidence_.size(); ++i) {
    const double confidence = confidence_[i];
    if (std::isnan(confidence)) return {};
    // (b/n, (b+1)/n]: ceil(c n) - 1, clamped so that c = 0 lands in the first bin.
    const int bin = std::clamp(int(std::ceil(confidence * bins)) - 1, 0, bins - 1);
    confidence_sum[size_t(bin)] += confidence;
    correct_sum[size_t(bin)] += correct_[i];
    ++count[size_t(bin)];
  }
  std::vector<ReliabilityBin> diagram(static_cast<size_t>(bins));
  for (int b = 0; b < bins; ++b) {
    ReliabilityBin& bin = diagram[size_t(b)];
    bin.low = double(b) / bins;
    bin.high = double(b + 1) / bins;
    bin.count = count[size_t(b)];
    if (bin.count > 0) {
      bin.accuracy = correct_sum[size_t(b)] / double(bin.count);
      bin.confidence = confidence_sum[size_t(b)] / double(bin.count);
    }
  }
  return diagram;
}

double MetricsAccumulator::ece(int bins) const {
  const std::vector<ReliabilityBin> diagram = reliability(bins);
  if (count_ == 0) return 0.0;
  if (diagram.empty()) return NAN;
  double ece = 0;
  for (const ReliabilityBin& bin : diagram)
    ece += double(bin.count) * std::abs(bin.accuracy - bin.confidence);
  return ece / double(count_);
}

ClassificationMetrics summarize(const MetricsAccumulator& accumulator) {
  return {accumulator.count(), accumulator.top1(),  accumulator.top5(),         accumulator.nll(),
          accumulator.ece(15), accumulator.ece(10), accumulator.reliability(15)};
}

ClassificationMetrics classification_metrics(const Tensor& logits, const Tensor& labels) {
  MetricsAccumulator accumulator;
  accumulator.add(logits, labels);
  return summarize(accumulator);
}

}  // namespace kindling
