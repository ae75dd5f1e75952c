// The gradient walk: every differentiable case in the op registry is checked against central
// differences. For out = op(inputs) and a random r, L = sum(out * r); the analytic dL/dx from
// backward() must match (L(x + h e_j) - L(x - h e_j)) / 2h for every element j of every input
// that requires grad. A second test pins the list of ops so none can silently drop out.
#include "core/autograd.h"
#include "ops/ops.h"
#include "ops/registry.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <string>

namespace {
using namespace kindling;

// L = sum(out * r), in double on the host.
double weighted_sum(const Tensor& out, const std::vector<float>& r) {
  const std::vector<float> values = out.to_vector<float>();
  double total = 0.0;
  for (size_t i = 0; i < values.size(); ++i) total += double(values[i]) * double(r[i]);
  return total;
}

struct GradError {
  double worst = 0.0;  // max |analytic - numeric| / max(1, |numeric|)
  std::string where;   // "input 1, element 5: analytic 0.3 vs numeric 0.5"
};

// Compares one input's analytic gradient with central differences.
void check_input(const OpCase& c, const std::vector<Tensor>& inputs, size_t i, const std::vector<float>& r,
                 GradError& error) {
  const Tensor& x = inputs[i];
  const Tensor& grad = x.grad();
  REQUIRE_MESSAGE((!grad.defined() || grad.shape() == x.shape()), c.name, ": gradient of input ", i,
                  " has shape ", shape_str(grad.shape()), ", input is ", shape_str(x.shape()));
  const std::vector<float> analytic =
      grad.defined() ? grad.to_vector<float>() : std::vector<float>(size_t(x.numel()), 0.0f);
  NoGradGuard no_grad;
  std::vector<Tensor> perturbed = inputs;
  for (int64_t j = 0; j < x.numel(); ++j) {
    auto loss_at = [&](double delta) {
      Tensor moved = x.detach().clone();
      moved.data<float>()[j] += float(delta);
      perturbed[i] = moved;
      return weighted_sum(c.forward(perturbed), r);
    };
    const double numeric = (loss_at(c.fd_step) - loss_at(-c.fd_step)) / (2.0 * c.fd_step);
    const double err = std::fabs(analytic[size_t(j)] - numeric) / std::max(1.0, std::fabs(numeric));
    if (err > error.worst || std::isnan(err)) {
      error.worst = std::isnan(err) ? INFINITY : err;
      error.where = "input " + std::to_string(i) + ", element " + std::to_string(j) + ": analytic " +
                    std::to_string(analytic[size_t(j)]) + " vs numeric " + std::to_string(numeric);
    }
  }
}

void check_case(const OpCase& c, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> inputs = c.make_inputs(gen);
  Tensor out = c.forward(inputs);
  REQUIRE_MESSAGE(out.dtype() == DType::f32, c.name, ": output is ", out.describe());
  std::vector<float> r(size_t(out.numel()));
  for (float& v : r) v = float(gen.normal());
  Tensor loss = sum(mul(out, from_vector(r, out.shape())));
  bool any = false;
  for (const Tensor& x : inputs) any = any || x.requires_grad();
  REQUIRE_MESSAGE(any, c.name, ": no input requires grad");
  loss.backward();
  GradError error;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) check_input(c, inputs, i, r, error);
  CHECK_MESSAGE(error.worst <= c.tolerance, c.name, ": worst relative error ", error.worst, " at ",
                error.where, " (tolerance ", c.tolerance, ")");
}

TEST_CASE("gradcheck: every differentiable registry case matches central differences") {
  int checked = 0;
  uint64_t seed = 1000;
  for (const OpCase& c : all_op_cases()) {
    ++seed;
    if (!c.differentiable) continue;
    try {
      check_case(c, seed);
    } catch (const std::exception& e) {
      FAIL_CHECK(c.name, " threw: ", std::string(e.what()));
    }
    ++checked;
  }
  MESSAGE("checked ", checked, " differentiable cases");
  CHECK(checked >= 100);
}

TEST_CASE("gradcheck: forward-only registry cases run and give finite f32 outputs") {
  uint64_t seed = 1000;
  for (const OpCase& c : all_op_cases()) {
    ++seed;
    if (c.differentiable) continue;
    try {
      Generator gen(seed);
      Tensor out = c.forward(c.make_inputs(gen));
      bool finite = out.dtype() == DType::f32;
      if (finite)
        for (float v : out.to_vector<float>()) finite = finite && std::isfinite(v);
      CHECK_MESSAGE(finite, c.name, ": output ", out.describe(), " is not finite f32");
    } catch (const std::exception& e) {
      FAIL_CHECK(c.name, " threw: ", std::string(e.what()));
    }
  }
}

// The ops that must have cases: removing an op's cases fails here, not silently.
const std::vector<std::string> kExpectedOps = {
    // elementwise
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "maximum",
    "minimum",
    "neg",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "reciprocal",
    "abs",
    "square",
    "sin",
    "cos",
    "relu",
    "sigmoid",
    "tanh",
    "clamp",
    "where",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    // reduce
    "sum",
    "mean",
    "sum_squares",
    "max",
    "min",
    "argmax",
    "argmin",
    // shape
    "reshape",
    "view",
    "flatten",
    "permute",
    "transpose",
    "slice",
    "narrow",
    "select",
    "expand",
    "squeeze",
    "unsqueeze",
    "contiguous",
    "cat",
    "stack",
    "sum_to",
    // matmul, softmax
    "matmul",
    "linear",
    "softmax",
    "log_softmax",
    "one_hot",
    // CNN
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "batch_norm",
    "dropout",
    "batch_norm_relu",
};

TEST_CASE("registry: every expected op has a case, names are unique and well formed") {
  std::set<std::string> ops, names;
  for (const OpCase& c : all_op_cases()) {
    const size_t slash = c.name.find('/');
    CHECK_MESSAGE((slash != std::string::npos && slash > 0 && slash + 1 < c.name.size()), c.name,
                  ": case names are <op>/<variant>");
    CHECK_MESSAGE(names.insert(c.name).second, c.name, ": duplicate case name");
    ops.insert(c.name.substr(0, slash));
    CHECK_MESSAGE(c.fd_step > 0.0, c.name);
    CHECK_MESSAGE(c.tolerance > 0.0, c.name);
  }
  for (const std::string& op : kExpectedOps) CHECK_MESSAGE(ops.count(op) == 1, "no registry case for ", op);
}

}  // namespace
