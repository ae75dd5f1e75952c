// Autograd engine behaviour: reuse of a tensor, shared subgraphs, retain_graph, no_grad, detach,
// gradient accumulation (and who may own the summed buffer), saved-tensor lifetime and version checks, and
// the errors for misuse (asserted by text, since the text is the user interface).
#include "core/autograd.h"
#include "ops/ops.h"

#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

namespace {
using namespace kindling;

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

Tensor leaf(const std::vector<float>& v, const Shape& shape) {
  Tensor t = from_vector(v, shape);
  t.set_requires_grad(true);
  return t;
}

using kindling::test::error_text;

void check_close(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-5));
}

TEST_CASE("a tensor used twice receives the sum of both gradients") {
  Tensor x = leaf({1, 2, -3}, {3});
  sum(x * x + x).backward();  // d/dx (x² + x) = 2x + 1
  check_close(values(x.grad()), {3, 5, -5});
}

TEST_CASE("shared subgraphs: a diamond sends both branches' gradients through the shared node") {
  Tensor x = leaf({0.5f, -1.0f}, {2});
  Tensor h = exp(x);                    // shared
  Tensor y = sum(h * 2.0 + square(h));  // dy/dx = (2 + 2h) h
  y.backward();
  const std::vector<float> xv = {0.5f, -1.0f};
  std::vector<float> want;
  for (float v : xv) want.push_back((2.0f + 2.0f * std::exp(v)) * std::exp(v));
  check_close(values(x.grad()), want);
  CHECK(h.grad().defined() == false);  // non-leaves do not keep .grad
}

TEST_CASE("gradients broadcast back to each operand's shape") {
  Tensor a = leaf({1, 2, 3}, {3, 1});
  Tensor b = leaf({10, 20, 30, 40}, {4});
  sum(a * b).backward();
  CHECK(a.grad().shape() == Shape{3, 1});
  check_close(values(a.grad()), {100, 100, 100});
  check_close(values(b.grad()), {6, 6, 6, 6});
}

TEST_CASE("gradients flow through views into the right elements") {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor picked = x.t().slice(0, 1, 3).select(1, 0);  // x[0, 1:3]
  sum(picked * from_vector<float>({10, 20}, {2})).backward();
  check_close(values(x.grad()), {0, 10, 20, 0, 0, 0});
}

TEST_CASE("retain_graph allows a second backward, and without it the second one throws") {
  Tensor x = leaf({2, 3}, {2});
  Tensor y = sum(x * x);
  y.backward({}, true);
  y.backward();
  check_close(values(x.grad()), {8, 12});  // 2 * 2x
  CHECK(error_text([&] { y.backward(); }) ==
        "SumBackward: trying to backward through the graph a second time; its saved tensors were "
        "freed after the first backward (pass retain_graph=true to keep them)");
}

TEST_CASE("gradients accumulate across separate backward calls until reset") {
  Tensor x = leaf({1, -1}, {2});
  sum(x * 3.0).backward();
  sum(x * 3.0).backward();
  check_close(values(x.grad()), {6, 6});
  x.set_grad({});
  sum(x * 3.0).backward();
  check_close(values(x.grad()), {3, 3});
}

TEST_CASE("a leaf's gradient owns its buffer: later changes to the upstream gradient do not leak in") {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor upstream = ones({3});
  (x + 0.0).backward(upstream);  // AddScalarBackward passes the gradient through unchanged
  {
    NoGradGuard no_grad;
    upstream.fill_(5.0);
  }
  check_close(values(x.grad()), {1, 1, 1});
}

TEST_CASE("summing a tensor's gradients never changes a gradient that the caller still holds") {
  // Both roots pass their gradient through unchanged to a, whose slot first holds the caller's
  // g1 itself; the second gradient must go to a new buffer, not into g1.
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor a = x * 2.0;
  Tensor g1 = from_vector(std::vector<float>{1, 10, 100}, {3});
  Tensor g2 = from_vector(std::vector<float>{2, 20, 200}, {3});
  run_backward({a + 0.0, a + 0.0}, {g1, g2}, false);
  check_close(values(x.grad()), {6, 60, 600});
  check_close(values(g1), {1, 10, 100});
  check_close(values(g2), {2, 20, 200});
  // Gradients that nothing else holds are summed in place; the result is the same.
  Tensor y = leaf({1, 2, 3}, {3});
  sum(y * y * 3.0 + y * y).backward();  // d/dy 4y² = 8y
  check_close(values(y.grad()), {8, 16, 24});
}

TEST_CASE("no_grad records nothing and restores the previous mode") {
  Tensor x = leaf({1, 2}, {2});
  {
    NoGradGuard outer;
    {
      NoGradGuard inner;
      CHECK_FALSE(GradMode::is_enabled());
    }
    CHECK_FALSE(GradMode::is_enabled());
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(GradMode::is_enabled());
  CHECK((x * 2.0).grad_fn()->name() == "MulScalarBackward");
}

TEST_CASE("detach shares storage but cuts the graph") {
  Tensor x = leaf({1, 2}, {2});
  Tensor d = (x * 2.0).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  Tensor y = sum(x * d);  // d is a constant here
  y.backward();
  check_close(values(x.grad()), {2, 4});
  Tensor same = x.detach();
  CHECK(same.storage() == x.storage());
}

TEST_CASE("backward of a non-scalar needs a gradient of its shape") {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = x * 3.0;
  CHECK(error_text([&] { y.backward(); }) ==
        "backward: a gradient can be implied only for a single-element output; this output is f32[2] "
        "on cpu — pass a gradient of that shape");
  CHECK(error_text([&] { y.backward(ones({3})); }) ==
        "backward: gradient f32[3] on cpu does not match the output f32[2] on cpu");
  y.backward(from_vector<float>({1, 10}, {2}));
  check_close(values(x.grad()), {3, 30});
  CHECK(error_text([] { ones({1}).backward(); }) ==
        "backward: the tensor (f32[1] on cpu) does not require grad and has no grad_fn");
}

TEST_CASE("an in-place change to a saved tensor is caught at backward time") {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor w = from_vector<float>({4, 5, 6}, {3});  // saved by mul, does not require grad
  Tensor y = sum(x * w);
  w.select(0, 1).fill_(0.0);  // through a view: the version lives on the storage
  CHECK(error_text([&] { y.backward(); }) ==
        "a tensor saved for backward (f32[3] on cpu) was modified by an in-place operation after it "
        "was saved (version 1 now, 0 when saved)");
}

TEST_CASE("in-place ops on a tensor that requires grad are refused while grad mode is on") {
  Tensor x = leaf({1, 2}, {2});
  CHECK(error_text([&] { x.fill_(0.0); }) ==
        "fill_: in-place change of a tensor that requires grad (f32[2] on cpu) while grad mode is on; "
        "use NoGradGuard or an out-of-place op");
  CHECK_THROWS_AS(x.add_(ones({2})), AutogradError);
  CHECK_THROWS_AS((x * 2.0).mul_(3.0), AutogradError);
  {
    NoGradGuard no_grad;  // what optimizers do
    x.add_(ones({2}), -0.5);
  }
  check_close(values(x), {0.5f, 1.5f});
}

TEST_CASE("requires_grad can be set only on f32 leaves") {
  Tensor x = leaf({1}, {1});
  Tensor y = x * 2.0;
  CHECK(
      error_text([&] { y.set_requires_grad(false); }) ==
      "set_requires_grad: only leaf tensors can change requires_grad; this one comes from MulScalarBackward");
  CHECK(error_text([] { arange(2, TensorOptions{}.with_dtype(DType::i64)).set_requires_grad(true); }) ==
        "set_requires_grad: only f32 tensors can require grad, this one is i64[2] on cpu");
}

TEST_CASE("saved tensors are freed by a backward without retain_graph") {
  Tensor x = leaf({1, 2}, {2});
  Tensor w = from_vector<float>({3, 4}, {2});
  Tensor y = sum(x * w);
  CHECK(w.storage().use_count() == 2);  // w and MulBackward's saved alias
  y.backward();
  CHECK(w.storage().use_count() == 1);
}

TEST_CASE("a scalar leaf can be the root of backward") {
  Tensor x = leaf({2}, {});
  x.backward();
  check_close(values(x.grad()), {1});
}

TEST_CASE("comparisons and argmax are not differentiable and stop the graph") {
  Tensor x = leaf({1, 3, 2}, {3});
  CHECK_FALSE(gt(x, 1.5).requires_grad());
  CHECK_FALSE(argmax(x).requires_grad());
  Tensor y = sum(x * gt(x, 1.5));  // the mask is a constant
  y.backward();
  check_close(values(x.grad()), {0, 1, 1});
}

}  // namespace
