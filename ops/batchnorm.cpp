// batch_norm and batch_norm_relu: checks, the 2-D/3-D views, the training kernel (batch statistics +
// running-stat update) or the eval kernel, and both backwards: training through the backend's closed
// form, eval (a per-channel affine map) from backend primitives. Registry cases at the end.
#include "ops/batchnorm.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/registry.h"

namespace kindling {
namespace {

TensorOptions on(Device device) { return TensorOptions{}.with_device(device); }

// t (contiguous, [N,C], [N,C,L] or [N,C,H,W]) as a 4-D view [N,C,H,W] sharing its storage.
Tensor as_nchw(const Tensor& t) {
  if (t.dim() == 4) return t;
  const int64_t N = t.size(0), C = t.size(1), L = t.dim() == 3 ? t.size(2) : 1;
  return as_strided(t, {N, C, L, 1}, {C * L, L, 1, 1}, t.offset());
}

void check_channel_tensor(const char* op, const Tensor& t, const char* what, const Tensor& input, int64_t C) {
  if (!t.defined()) return;
  KINDLING_CHECK(t.dtype() == DType::f32 && t.dim() == 1 && t.size(0) == C, ShapeError,
                 "{}: {} must be f32 [{}] for input {}, got {}", op, what, C, input.describe(), t.describe());
  KINDLING_CHECK(t.device() == input.device(), DeviceError, "{}: input is {} but {} is {}", op,
                 input.describe(), what, t.describe());
  KINDLING_CHECK(t.is_contiguous(), ValueError, "{}: {} must be contiguous", op, what);
}

// Eval-mode gradients: y = x*scale + shift per channel with scale = weight*invstd, so
// dx = dy*scale, dweight = sum dy*(x - running_mean)*invstd, dbias = sum dy (sums over n, h, w).
std::vector<Tensor> eval_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                  const Tensor& running_mean, const Tensor& invstd, const GradOutputs& g) {
  Backend& be = backend(dy.device());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const Shape per_channel{1, C, 1, 1};
  auto channel_view = [&](const Tensor& t) {
    return broadcast_view(as_strided(t, per_channel, {0, 1, 0, 0}, t.offset()), x.shape());
  };
  // sum over n, h, w of t [N,C,H,W] -> [C]
  auto channel_sum = [&](const Tensor& t) {
    Tensor per_sample = empty({N, C}, on(t.device()));
    be.reduce(ReduceOp::Sum, per_sample, t, N * C, HW, 1);
    Tensor out = empty({C}, on(t.device()));
    be.reduce(ReduceOp::Sum, out, per_sample, 1, N, C);
    return out;
  };
  std::vector<Tensor> grads(3);
  if (g.needs(0)) {
    Tensor scale = invstd;
    if (weight.defined()) {
      scale = empty({C}, on(x.device()));
      be.binary(BinaryOp::Mul, scale, invstd, weight);
    }
    grads[0] = empty(x.shape(), on(x.device()));
    be.binary(BinaryOp::Mul, grads[0], dy, channel_view(scale));
  }
  if (g.needs(1)) {
    Tensor xhat = empty(x.shape(), on(x.device()));
    be.binary(BinaryOp::Sub, xhat, x, channel_view(running_mean));
    be.binary(BinaryOp::Mul, xhat, xhat, channel_view(invstd));
    be.binary(BinaryOp::Mul, xhat, xhat, dy);
    grads[1] = channel_sum(xhat);
  }
  if (g.needs(2)) grads[2] = channel_sum(dy);
  return grads;
}

// The gradient reaching batch norm's output from the fused op's: dy where y > 0, else 0 (relu's).
Tensor relu_masked(const Tensor& dy, const Tensor& y) {
  Tensor masked = empty(dy.shape(), on(dy.device()));
  backend(dy.device()).binary(BinaryOp::ReluBackward, masked, dy, y);
  return masked;
}

// batch_norm, and with `relu` the fused batch_norm_relu: the checks, the views, the kernels and the
// one autograd node of both ops. `op` names the op in errors.
Tensor normalise(const char* op, const Tensor& input, const Tensor& weight, const Tensor& bias,
                 const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                 double eps, bool relu, const Tensor& residual) {
  KINDLING_CHECK(input.defined() && input.dtype() == DType::f32, DTypeError, "{}: input must be f32, got {}",
                 op, input.describe());
  KINDLING_CHECK(input.dim() >= 2 && input.dim() <= 4, ShapeError,
                 "{}: input must be [N,C], [N,C,L] or [N,C,H,W], got {}", op, input.describe());
  const int64_t C = input.size(1);
  check_channel_tensor(op, weight, "weight", input, C);
  check_channel_tensor(op, bias, "bias", input, C);
  check_channel_tensor(op, running_mean, "running_mean", input, C);
  check_channel_tensor(op, running_var, "running_var", input, C);
  KINDLING_CHECK(running_mean.defined() == running_var.defined(), ValueError,
                 "{}: give both running_mean and running_var or neither", op);
  KINDLING_CHECK(eps > 0.0, ValueError, "{}: eps must be positive, got {}", op, eps);
  if (residual.defined()) {
    KINDLING_CHECK(residual.dtype() == DType::f32, DTypeError, "{}: residual must be f32, got {}", op,
                   residual.describe());
    KINDLING_CHECK(residual.shape() == input.shape(), ShapeError,
                   "{}: residual must be shaped like input {}, got {}", op, input.describe(),
                   residual.describe());
    KINDLING_CHECK(residual.device() == input.device(), DeviceError, "{}: input is {} but residual is {}", op,
                   input.describe(), residual.describe());
  }

  const Tensor x_in = input.contiguous();
  const Tensor x = as_nchw(x_in);
  const Tensor r = residual.defined() ? as_nchw(residual.contiguous()) : Tensor();
  const Device device = x.device();
  const int64_t per_channel = x.size(0) * x.size(2) * x.size(3);
  const bool batch_stats = training || !running_mean.defined();
  KINDLING_CHECK(!batch_stats || per_channel > 1 || x.numel() == 0, ValueError,
                 "{}: expected more than 1 value per channel when training, got input {}", op,
                 input.describe());
  // The kernels always receive an affine pair; absent ones are 1 and 0.
  const Tensor w = weight.defined() ? weight.detach() : ones({C}, on(device));
  const Tensor b = bias.defined() ? bias.detach() : zeros({C}, on(device));
  Backend& be = backend(device);
  const std::vector<Tensor> inputs =
      relu ? std::vector<Tensor>{x_in, weight, bias, residual} : std::vector<Tensor>{x_in, weight, bias};

  Tensor y_out = empty(input.shape(), on(device));
  const Tensor y = as_nchw(y_out);
  if (batch_stats) {
    Tensor save_mean = empty({C}, on(device)), save_invstd = empty({C}, on(device));
    if (x.numel() > 0) {
      if (relu)
        be.batch_norm_relu_fwd_train(y, save_mean, save_invstd, running_mean, running_var, x, w, b, r,
                                     float(momentum), float(eps));
      else
        be.batch_norm_fwd_train(y, save_mean, save_invstd, running_mean, running_var, x, w, b,
                                float(momentum), float(eps));
      if (running_mean.defined()) {  // changed in place, outside autograd
        running_mean.storage()->bump_version();
        running_var.storage()->bump_version();
      }
    }
    if (needs_grad(inputs)) {
      // The fused op's backward reads relu's mask from its own output (saved), as relu's does.
      SavedTensor saved_x(x_in), saved_w(w), saved_y = relu ? SavedTensor(y_out) : SavedTensor();
      record(relu ? "BatchNormReluBackward" : "BatchNormBackward", inputs, y_out,
             [saved_x, saved_w, saved_y, save_mean, save_invstd, relu](const GradOutputs& g) {
               const Tensor& x_in = saved_x.unpack();
               const Tensor& w = saved_w.unpack();
               const Tensor dy = as_nchw(g[0].contiguous());
               const TensorOptions options = on(x_in.device());
               Tensor dx = g.needs(0) ? empty(x_in.shape(), options) : Tensor();
               Tensor dweight = g.needs(1) ? empty(w.shape(), options) : Tensor();
               Tensor dbias = g.needs(2) ? empty(w.shape(), options) : Tensor();
               Tensor dresidual = relu && g.needs(3) ? empty(x_in.shape(), options) : Tensor();
               const Tensor dx_view = dx.defined() ? as_nchw(dx) : Tensor();
               Backend& be = backend(x_in.device());
               if (relu)
                 be.batch_norm_relu_bwd(dx_view, dweight, dbias,
                                        dresidual.defined() ? as_nchw(dresidual) : Tensor(), dy,
                                        as_nchw(saved_y.unpack()), as_nchw(x_in), w, save_mean, save_invstd);
               else
                 be.batch_norm_bwd(dx_view, dweight, dbias, dy, as_nchw(x_in), w, save_mean, save_invstd);
               std::vector<Tensor> grads{dx, dweight, dbias};
               if (relu) grads.push_back(dresidual);
               return grads;
             });
    }
    return y_out;
  }

  if (x.numel() > 0) {
    if (relu)
      be.batch_norm_relu_fwd_eval(y, x, w, b, r, running_mean, running_var, float(eps));
    else
      be.batch_norm_fwd_eval(y, x, w, b, running_mean, running_var, float(eps));
  }
  if (needs_grad(inputs)) {
    // invstd from the running variance as it is now; a later in-place update of the running stats
    // must not change this step's gradient, so it is computed here and saved.
    Tensor invstd = empty({C}, on(device));
    be.unary(UnaryOp::Affine, invstd, running_var, 1.0f, float(eps));
    be.unary(UnaryOp::Rsqrt, invstd, invstd, 0.0f, 0.0f);
    const Tensor mean_now = running_mean.detach().clone();
    SavedTensor saved_x(x_in), saved_y = relu ? SavedTensor(y_out) : SavedTensor();
    record(relu ? "BatchNormReluEvalBackward" : "BatchNormEvalBackward", inputs, y_out,
           [saved_x, saved_y, weight = weight.defined() ? weight.detach() : Tensor(), mean_now, invstd,
            relu](const GradOutputs& g) {
             const Tensor& x_in = saved_x.unpack();
             Tensor dy = g[0].contiguous();
             if (relu) dy = relu_masked(dy, saved_y.unpack());
             std::vector<Tensor> grads =
                 eval_backward(as_nchw(dy), as_nchw(x_in), weight, mean_now, invstd, g);
             if (grads[0].defined())
               grads[0] = as_strided(grads[0], x_in.shape(), contiguous_strides(x_in.shape()), 0);
             if (relu) grads.push_back(g.needs(3) ? dy : Tensor());
             return grads;
           });
  }
  return y_out;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  return normalise("batch_norm", input, weight, bias, running_mean, running_var, training, momentum, eps,
                   false, Tensor());
}

Tensor batch_norm_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, bool training, double momentum,
                       double eps, const Tensor& residual) {
  return normalise("batch_norm_relu", input, weight, bias, running_mean, running_var, training, momentum, eps,
                   true, residual);
}

// ---- registry cases: training mode, gradients with respect to x, weight and bias ----
void add_batchnorm_cases(OpCases& cases) {
  struct Geometry {
    const char* name;
    Shape x;
    bool affine;
  };
  const Geometry geometries[] = {
      {"train_4d", {3, 2, 3, 2}, true},
      {"train_2d", {5, 3}, true},
      {"train_no_affine", {2, 3, 2, 2}, false},
  };
  for (const Geometry& geo : geometries) {
    OpCase c;
    c.name = std::string("batch_norm/") + geo.name;
    const int64_t C = geo.x[1];
    c.make_inputs = [geo, C](Generator& gen) {
      std::vector<Tensor> inputs{randn(geo.x, {}, &gen, 0.5, 2.0).set_requires_grad(true)};
      if (geo.affine) {
        inputs.push_back(randn({C}, {}, &gen, 1.0, 0.5).set_requires_grad(true));
        inputs.push_back(randn({C}, {}, &gen).set_requires_grad(true));
      }
      return inputs;
    };
    c.forward = [C](const std::vector<Tensor>& in) {
      // Fresh running stats each call, so repeated evaluations see the same state.
      Tensor running_mean = zeros({C}, TensorOptions{}.with_device(in[0].device()));
      Tensor running_var = ones({C}, TensorOptions{}.with_device(in[0].device()));
      return batch_norm(in[0], in.size() > 1 ? in[1] : Tensor(), in.size() > 2 ? in[2] : Tensor(),
                        running_mean, running_var, true, 0.1, 1e-5);
    };
    c.tolerance = 3e-2;
    cases.push_back(std::move(c));
  }
}

}  // namespace kindling
