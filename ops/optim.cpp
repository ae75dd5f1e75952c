#include "ops/optim.h"

#include "core/storage.h"

#include <initializer_list>

namespace kindling {
namespace {

// `state` (named `what`) matches the parameter: contiguous f32, same shape and device.
void check_like_param(const char* op, const char* what, const Tensor& state, const Tensor& param) {
  KINDLING_CHECK(state.defined() && state.dtype() == DType::f32 && state.is_contiguous() &&
                     state.shape() == param.shape() && state.device() == param.device(),
                 ValueError, "{}: {} must be a contiguous f32 tensor like the parameter {}, got {}", op, what,
                 param.describe(), state.defined() ? state.describe() : std::string("undefined"));
}

void check_param(const char* op, const Tensor& param, const Tensor& grad) {
  KINDLING_CHECK(param.defined() && param.dtype() == DType::f32 && param.is_contiguous(), ValueError,
                 "{}: the parameter must be a contiguous f32 tensor, got {}", op,
                 param.defined() ? param.describe() : std::string("undefined"));
  check_like_param(op, "grad", grad, param);
}

void bump_versions(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (t->defined()) t->storage()->bump_version();
}

}  // namespace

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdArgs& args) {
  check_param("sgd_step", param, grad);
  if (args.momentum != 0) check_like_param("sgd_step", "momentum_buffer", momentum_buffer, param);
  backend(param.device()).sgd_step(param, grad, momentum_buffer, args);
  bump_versions({&param, &momentum_buffer});
}

void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const AdamWArgs& args) {
  check_param("adamw_step", param, grad);
  check_like_param("adamw_step", "exp_avg", exp_avg, param);
  check_like_param("adamw_step", "exp_avg_sq", exp_avg_sq, param);
  backend(param.device()).adamw_step(param, grad, exp_avg, exp_avg_sq, args);
  bump_versions({&param, &exp_avg, &exp_avg_sq});
}

}  // namespace kindling
