// Optimizers: one fused Backend kernel per parameter (backend(param.device()).sgd_step /
// adamw_step), run under NoGradGuard. State (momentum buffers, Adam moments, per-parameter step
// counts) is allocated at construction, so state_dict() always has the same names and shapes and a
// checkpoint restores it exactly. The state is made on the parameters' device and follows them in
// place at the next step when Module::to moves them, so an optimizer may be built before or after.
#pragma once
#include "core/backend.h"
#include "nn/module.h"

#include <string>
#include <vector>

namespace kindling {

class Optimizer {
 public:
  // params: named parameters (Module::named_parameters()); each f32, contiguous, requiring grad.
  explicit Optimizer(NamedTensors params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters without one are skipped (their
  // state and step count do not change), as in PyTorch.
  virtual void step() = 0;
  virtual std::string describe() const = 0;
  // Drops every parameter's gradient.
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }  // schedules call this before each step
  const NamedTensors& params() const { return params_; }

  // The optimizer's state tensors, named "<param name>.<state>" (momentum_buffer, exp_avg,
  // exp_avg_sq on the parameter's device; step as an i64 scalar on the CPU). They are the
  // optimizer's own tensors, not copies.
  NamedTensors state_dict() const;
  // Copies `state` into the optimizer's state; ValueError naming the first missing, unexpected,
  // misshaped or mistyped tensor, and nothing is copied unless all match.
  void load_state_dict(const NamedTensors& state);
  // The step count of parameter i (0 before its first update).
  int64_t step_count(size_t i) const;

 protected:
  // Registers a state tensor of parameter i, zero-initialised like the parameter.
  Tensor add_state(size_t i, const std::string& name);
  // Increments parameter i's step count and returns the new value.
  int64_t advance(size_t i);

  NamedTensors params_;
  double lr_;

 private:
  NamedTensors state_;
  std::vector<Tensor> steps_;  // i64 [] on the CPU, one per parameter
};

struct SgdOptions {
  double lr = 0.1, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
};

// torch.optim.SGD: g = grad + wd*p; buf = momentum*buf + (1-dampening)*g (buf = g on the first
// step); g = nesterov ? g + momentum*buf : buf; p -= lr*g. Momentum buffers exist only when
// momentum != 0.
class Sgd final : public Optimizer {
 public:
  Sgd(NamedTensors params, const SgdOptions& options);
  void step() override;
  std::string describe() const override;

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_buffers_;
};

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

// torch.optim.AdamW: p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²;
// p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
class AdamW final : public Optimizer {
 public:
  AdamW(NamedTensors params, const AdamWOptions& options);
  void step() override;
  std::string describe() const override;

 private:
  AdamWOptions options_;
  std::vector<Tensor> exp_avgs_, exp_avg_sqs_;
};

// Scales every gradient by max_norm / (total + 1e-6) when the global L2 norm `total` of all
// gradients exceeds max_norm, as torch.nn.utils.clip_grad_norm_. Parameters without a gradient are
// ignored. Returns the norm before clipping (possibly inf or nan; then nothing is scaled).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace kindling
