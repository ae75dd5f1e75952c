// Classification metrics used by training, evaluation and the loss study, computed in one place:
// top-1 and top-5 accuracy, NLL, and expected calibration error with n equal-width confidence bins
// (15 by default, 10 to compare with the squentropy paper). Logits may live on any device; they
// are copied to the host. A NaN logit gives NaN metrics rather than an error, so a diverged run
// still reports.
#pragma once
#include "core/tensor.h"

#include <cstdint>
#include <vector>

namespace kindling {

// One confidence bin of a reliability diagram: the rows whose confidence max_j p_j lies in
// (low, high], their accuracy and their mean confidence (both 0 when the bin is empty).
struct ReliabilityBin {
  double low = 0, high = 0;
  int64_t count = 0;
  double accuracy = 0, confidence = 0;
};

// Streams over evaluation batches: add() each batch, then read the metrics of everything added.
class MetricsAccumulator {
 public:
  // logits [N, C] f32, labels [N] i64 in [0, C) (ValueError naming the row otherwise).
  void add(const Tensor& logits, const Tensor& labels);
  void reset() { *this = MetricsAccumulator(); }

  int64_t count() const { return count_; }
  // Fractions in [0, 1]. A row counts as top-k correct when fewer than k classes beat its label,
  // ties going to the lower class index (so top-1 is argmax with the first maximum). C < k: all.
  double top1() const;
  double top5() const;
  double nll() const;  // mean of -ln p_y (natural log, via log-sum-exp)
  // sum over bins b of (|b| / count) |accuracy(b) - confidence(b)|, confidence = max_j p_j, bin b
  // = (b/n, (b+1)/n] (the first bin also takes 0).
  double ece(int bins = 15) const;
  // The `bins` equal-width bins ece() sums over; empty when a confidence is NaN (a NaN logit).
  std::vector<ReliabilityBin> reliability(int bins = 15) const;

 private:
  int64_t count_ = 0, top1_hits_ = 0, top5_hits_ = 0;
  double nll_sum_ = 0;
  std::vector<float> confidence_;  // per row: max_j p_j
  std::vector<uint8_t> correct_;   // per row: argmax == label
};

struct ClassificationMetrics {
  int64_t count = 0;
  double top1 = 0, top5 = 0, nll = 0, ece15 = 0, ece10 = 0;
  std::vector<ReliabilityBin> reliability;  // 15 bins, those of ece15
};
// labels [N] i64 copied to the host, each checked to lie in [0, C) for logits [N, C]: otherwise
// ValueError "<who>: labels[n] = v is outside [0, C) for logits <logits>", naming the first bad row.
std::vector<int64_t> host_labels(const char* who, const Tensor& labels, const Tensor& logits);

// All metrics of one batch (or a whole evaluation set held as one tensor).
// Every metric of what `accumulator` has seen (ECE with 15 and with 10 bins).
ClassificationMetrics summarize(const MetricsAccumulator& accumulator);
ClassificationMetrics classification_metrics(const Tensor& logits, const Tensor& labels);

}  // namespace kindling
