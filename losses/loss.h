// Loss: the front door to every studied loss. Built from a spec `name[:key=value,...]`
// (docs/losses.md, "Naming hyperparameters"); forward() runs the fused kernel, which computes the
// loss and its gradient in one pass over the logits, and records a backward node that only scales
// the saved gradient. The list of losses and their hyperparameters is losses/registry.h.
#pragma once
#include "core/tensor.h"
#include "losses/loss_desc.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kindling {

class Loss {
 public:
  // Parses `spec`, e.g. "ce", "focal:gamma=2,alpha=0.25", "ce_expectation_mix:F=0/0.5,h=1.9",
  // "min_ent:w1=1,w2=0.1,b1=e,b2=e", "square:k=auto,M=15". Every loss also takes
  // reduction=mean|sum|none. Throws ValueError naming the bad name, key or value and listing the
  // valid ones.
  explicit Loss(const std::string& spec = "ce");

  LossKind kind() const { return kind_; }
  const char* name() const;
  // The spec with every hyperparameter spelled out, defaults included; parses back to this loss.
  std::string spec() const;
  Reduction reduction() const { return reduction_; }
  void set_reduction(Reduction reduction) { reduction_ = reduction; }

  // Training progress for losses whose weights follow a schedule (ce_expectation_mix); the others
  // ignore it. epoch counts from 0; requires 0 <= epoch and 1 <= total_epochs.
  void set_progress(int64_t epoch, int64_t total_epochs);

  // The kernels' description of this loss for `num_classes` classes at the current progress.
  LossDesc desc(int64_t num_classes) const;

  // logits [N, C] f32 and labels [N] i64 in [0, C), on one device, N >= 1 -> a scalar: the mean of
  // the row losses (NGL's row loss is the mean over its C classes, so NGL is a mean over N*C), or
  // their sum, or the [N] row losses for reduction none. Differentiable in logits: the gradient is
  // computed by the same kernel and saved, and the backward node scales it by the incoming grad.
  Tensor forward(const Tensor& logits, const Tensor& labels) const;
  Tensor operator()(const Tensor& logits, const Tensor& labels) const { return forward(logits, labels); }

 private:
  double number(const char* key) const;  // a numeric hyperparameter's value (NaN for auto)

  LossKind kind_ = LossKind::ce;
  std::vector<std::pair<std::string, std::vector<double>>> values_;  // key -> value(s)
  Reduction reduction_ = Reduction::mean;
  int64_t epoch_ = 0, total_epochs_ = 0;
};

// The CE/expectation mix schedule (docs/losses.md): fractions F (K of them, each in [0, 0.5]) and
// h give, at `epoch` (from 0) of `total_epochs`, the weights {alpha, beta} of CE and of 1 - q.
// total_epochs 0 (progress never set) means F_0.
std::pair<double, double> mix_weights(const std::vector<double>& F, double h, int64_t epoch,
                                      int64_t total_epochs);

}  // namespace kindling
