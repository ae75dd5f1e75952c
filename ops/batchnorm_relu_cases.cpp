// Registry cases of batch_norm_relu: training and eval, with and without the residual and the
// affine pair. The ReLU has a kink at 0, so each case draws its inputs away from it: where the
// residual is an input it is moved so that |batch_norm(x) + residual| >= 0.3 everywhere; otherwise
// x is drawn again until |batch_norm(x)| >= 0.06 everywhere, more than a central difference moves it.
#include "ops/batchnorm.h"

#include "core/autograd.h"
#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/registry.h"

#include <cmath>

namespace kindling {
namespace {

struct Variant {
  const char* name;
  Shape x;
  bool affine, residual, training;
};

// The running statistics a case uses: fresh ones each call in training (so that repeated
// evaluations see the same state), fixed ones in eval.
std::pair<Tensor, Tensor> running_stats(int64_t C, bool training, Device device) {
  const TensorOptions on = TensorOptions{}.with_device(device);
  if (training) return {zeros({C}, on), ones({C}, on)};
  std::vector<float> means, variances;
  for (int64_t c = 0; c < C; ++c) {
    means.push_back(0.2f * float(c) - 0.1f);
    variances.push_back(0.5f + 0.3f * float(c));
  }
  return {from_vector(means, {C}).to(device), from_vector(variances, {C}).to(device)};
}

// Inputs: x, then weight and bias when affine, then residual when it has one.
Tensor run(const Variant& v, const std::vector<Tensor>& in) {
  const auto [running_mean, running_var] = running_stats(v.x[1], v.training, in[0].device());
  const Tensor weight = v.affine ? in[1] : Tensor(), bias = v.affine ? in[2] : Tensor();
  const Tensor residual = v.residual ? in.back() : Tensor();
  return batch_norm_relu(in[0], weight, bias, running_mean, running_var, v.training, 0.1, 1e-5, residual);
}

// batch_norm(x) + residual: the value the ReLU sees.
std::vector<float> pre_activation(const Variant& v, const std::vector<Tensor>& in) {
  NoGradGuard no_grad;
  const auto [running_mean, running_var] = running_stats(v.x[1], v.training, Device::cpu());
  Tensor pre = batch_norm(in[0], v.affine ? in[1] : Tensor(), v.affine ? in[2] : Tensor(), running_mean,
                          running_var, v.training, 0.1, 1e-5);
  if (v.residual) pre = add(pre, in.back());
  return pre.to_vector<float>();
}

std::vector<Tensor> draw(const Variant& v, Generator& gen) {
  const int64_t C = v.x[1];
  for (int attempt = 0; attempt < 1000; ++attempt) {
    std::vector<Tensor> in{randn(v.x, {}, &gen, 0.5, 2.0)};
    if (v.affine) {
      in.push_back(randn({C}, {}, &gen, 1.0, 0.5));
      in.push_back(randn({C}, {}, &gen));
    }
    if (v.residual) in.push_back(randn(v.x, {}, &gen));
    const std::vector<float> pre = pre_activation(v, in);
    if (v.residual) {
      float* r = in.back().data<float>();
      for (size_t i = 0; i < pre.size(); ++i)
        if (std::fabs(pre[i]) < 0.3f) r[i] += pre[i] >= 0.0f ? 0.6f : -0.6f;
    } else {
      bool clear = true;
      for (float p : pre) clear = clear && std::fabs(p) >= 0.06f;
      if (!clear) continue;
    }
    for (Tensor& t : in) t.set_requires_grad(true);
    return in;
  }
  throw ValueError(fmt::format("batch_norm_relu/{}: no draw kept away from the ReLU's kink", v.name));
}

}  // namespace

void add_batchnorm_relu_cases(OpCases& cases) {
  const Variant variants[] = {
      {"train_4d", {3, 2, 3, 2}, true, false, true},
      {"train_residual", {2, 3, 2, 2}, true, true, true},
      {"train_2d", {6, 3}, true, false, true},
      {"train_no_affine_residual", {2, 2, 2, 3}, false, true, true},
      {"eval_residual", {2, 3, 2, 2}, true, true, false},
  };
  for (const Variant& v : variants) {
    OpCase c;
    c.name = std::string("batch_norm_relu/") + v.name;
    c.make_inputs = [v](Generator& gen) { return draw(v, gen); };
    c.forward = [v](const std::vector<Tensor>& in) { return run(v, in); };
    c.tolerance = 3e-2;
    cases.push_back(std::move(c));
  }
}

}  // namespace kindling
