#include "nn/optim.h"

#include "core/autograd.h"
#include "ops/optim.h"
#include "ops/reduce.h"
#include "ops/shape.h"

#include <cmath>

namespace kindling {

Optimizer::Optimizer(NamedTensors params, double lr) : params_(std::move(params)), lr_(lr) {
  for (const auto& [name, p] : params_) {
    KINDLING_CHECK(p.defined() && p.dtype() == DType::f32 && p.is_contiguous() && p.requires_grad(),
                   ValueError,
                   "optimizer: parameter {} must be a contiguous f32 tensor that requires "
                   "grad, got {}",
                   name, p.describe());
    steps_.push_back(zeros({}, TensorOptions{}.with_dtype(DType::i64)));
    state_.emplace_back(name + ".step", steps_.back());
  }
}

Tensor Optimizer::add_state(size_t i, const std::string& name) {
  Tensor buffer = zeros_like(params_[i].second);
  state_.emplace_back(params_[i].first + "." + name, buffer);
  return buffer;
}

int64_t Optimizer::advance(size_t i) { return ++steps_[i].data<int64_t>()[0]; }
int64_t Optimizer::step_count(size_t i) const { return steps_.at(i).data<int64_t>()[0]; }

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.set_grad(Tensor());
}

NamedTensors Optimizer::state_dict() const { return state_; }

void Optimizer::load_state_dict(const NamedTensors& state) {
  copy_named_tensors(state_, state, "optimizer state", "optimizer");
}

namespace {
// The gradient of `param` ready for a fused kernel, or undefined when there is none.
Tensor usable_grad(const std::string& name, const Tensor& param) {
  const Tensor& grad = param.grad();
  if (!grad.defined()) return grad;
  KINDLING_CHECK(
      grad.shape() == param.shape() && grad.dtype() == DType::f32 && grad.device() == param.device(),
      ValueError, "optimizer: the gradient of {} is {}, the parameter is {}", name, grad.describe(),
      param.describe());
  return grad.contiguous();
}
}  // namespace

// ---- SGD ----
Sgd::Sgd(NamedTensors params, const SgdOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  KINDLING_CHECK(options.lr >= 0 && options.momentum >= 0 && options.weight_decay >= 0, ValueError,
                 "SGD: lr ({}), momentum ({}) and weight_decay ({}) must be >= 0", options.lr,
                 options.momentum, options.weight_decay);
  KINDLING_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0), ValueError,
                 "SGD: Nesterov momentum needs momentum > 0 and dampening 0 (got {} and {})",
                 options.momentum, options.dampening);
  for (size_t i = 0; i < params_.size(); ++i)
    momentum_buffers_.push_back(options.momentum != 0 ? add_state(i, "momentum_buffer") : Tensor());
}

void Sgd::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, param] = params_[i];
    const Tensor grad = usable_grad(name, param);
    if (!grad.defined()) continue;
    if (momentum_buffers_[i].defined()) move_to_device_in_place(momentum_buffers_[i], param.device());
    SgdArgs args{
        float(lr_),        float(options_.momentum), float(options_.dampening), float(options_.weight_decay),
        options_.nesterov, step_count(i) == 0};
    sgd_step(param, grad, momentum_buffers_[i], args);
    advance(i);
  }
}

std::string Sgd::describe() const {
  return fmt::format("SGD(lr={}, momentum={}, dampening={}, weight_decay={}, nesterov={})", lr_,
                     options_.momentum, options_.dampening, options_.weight_decay, options_.nesterov);
}

// ---- AdamW ----
AdamW::AdamW(NamedTensors params, const AdamWOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  KINDLING_CHECK(options.lr >= 0 && options.eps >= 0 && options.weight_decay >= 0, ValueError,
                 "AdamW: lr ({}), eps ({}) and weight_decay ({}) must be >= 0", options.lr, options.eps,
                 options.weight_decay);
  KINDLING_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                 ValueError, "AdamW: betas must be in [0, 1), got ({}, {})", options.beta1, options.beta2);
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avgs_.push_back(add_state(i, "exp_avg"));
    exp_avg_sqs_.push_back(add_state(i, "exp_avg_sq"));
  }
}

void AdamW::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, param] = params_[i];
    const Tensor grad = usable_grad(name, param);
    if (!grad.defined()) continue;
    move_to_device_in_place(exp_avgs_[i], param.device());
    move_to_device_in_place(exp_avg_sqs_[i], param.device());
    AdamWArgs args{float(lr_),          float(options_.beta1),        float(options_.beta2),
                   float(options_.eps), float(options_.weight_decay), advance(i)};
    adamw_step(param, grad, exp_avgs_[i], exp_avg_sqs_[i], args);
  }
}

std::string AdamW::describe() const {
  return fmt::format("AdamW(lr={}, betas=({}, {}), eps={}, weight_decay={})", lr_, options_.beta1,
                     options_.beta2, options_.eps, options_.weight_decay);
}

// ---- gradient clipping ----
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  KINDLING_CHECK(max_norm > 0, ValueError, "clip_grad_norm: max_norm must be > 0, got {}", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  // One sum of squares per gradient, gathered into one tensor per device and read back once each.
  double total_squares = 0.0;
  std::vector<bool> done(grads.size(), false);
  for (size_t first = 0; first < grads.size(); ++first) {
    if (done[first]) continue;
    std::vector<Tensor> squares;
    for (size_t i = first; i < grads.size(); ++i)
      if (!done[i] && grads[i].device() == grads[first].device()) {
        squares.push_back(sum_squares(grads[i]));
        done[i] = true;
      }
    for (float s : stack(squares, 0).to_vector<float>()) total_squares += double(s);
  }
  const double total = std::sqrt(total_squares);
  const double coefficient = max_norm / (total + 1e-6);
  if (std::isfinite(total) && coefficient < 1.0)
    for (Tensor& g : grads) {
      Tensor grad = g;
      grad.mul_(coefficient);
    }
  return total;
}

}  // namespace kindling
