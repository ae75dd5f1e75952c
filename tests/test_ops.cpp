// Op values and errors: each family against hand-computed or naive results, broadcasting edge
// cases, non-contiguous inputs to every family (same result as contiguous), the threaded kernel
// paths on sizes large enough to split, and error messages asserted by text.
#include "core/parallel.h"
#include "core/rng.h"
#include "ops/ops.h"

#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

namespace {
using namespace kindling;

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }
Tensor tensor(const std::vector<float>& v, const Shape& shape) { return from_vector(v, shape); }
Tensor i64(const std::vector<int64_t>& v) {
  return from_vector(v, {int64_t(v.size())}, TensorOptions{}.with_dtype(DType::i64));
}

using kindling::test::error_text;

void check_close(const std::vector<float>& got, const std::vector<float>& want, double eps, int line) {
  REQUIRE_MESSAGE(got.size() == want.size(), "line ", line);
  for (size_t i = 0; i < got.size(); ++i)
    CHECK_MESSAGE(got[i] == doctest::Approx(want[i]).epsilon(eps).scale(1.0), "line ", line, ", element ", i);
}
// Element-wise closeness (relative eps, absolute below 1), reporting the caller's line.
#define CHECK_CLOSE(got, ...) check_close(got, __VA_ARGS__, 1e-5, __LINE__)
#define CHECK_CLOSE_EPS(got, want, eps) check_close(got, want, eps, __LINE__)

// A tensor holding t's values in a transposed (non-contiguous) layout.
Tensor transposed_layout(const Tensor& t) { return t.transpose(-1, -2).contiguous().transpose(-1, -2); }

// ---- elementwise ----
TEST_CASE("elementwise arithmetic, broadcasting and scalars") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row = tensor({10, 20, 30}, {3});
  Tensor col = tensor({1, -1}, {2, 1});
  CHECK_CLOSE(values(a + row), {11, 22, 33, 14, 25, 36});
  CHECK_CLOSE(values(a - col), {0, 1, 2, 5, 6, 7});
  CHECK_CLOSE(values(a * col), {1, 2, 3, -4, -5, -6});
  CHECK_CLOSE(values(row / a), {10, 10, 10, 2.5f, 4, 5});
  CHECK_CLOSE(values(2.0 - a), {1, 0, -1, -2, -3, -4});
  CHECK_CLOSE(values(12.0 / a), {12, 6, 4, 3, 2.4f, 2});
  CHECK_CLOSE(values(a / 4.0), {0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f});
  CHECK_CLOSE(values(-a * 0.5 + 1.0), {0.5f, 0, -0.5f, -1, -1.5f, -2});
  CHECK_CLOSE(values(pow(a, 2.0)), {1, 4, 9, 16, 25, 36});
  CHECK_CLOSE(values(pow(tensor({2, 3}, {2}), tensor({3, 0.5f}, {2}))), {8, std::sqrt(3.0f)});
  CHECK_CLOSE(values(maximum(a, tensor({3}, {}))), {3, 3, 3, 4, 5, 6});
  CHECK_CLOSE(values(minimum(col, row)), {1, 1, 1, -1, -1, -1});
  CHECK((tensor({1}, {}) + tensor({2}, {})).shape() == Shape{});
  CHECK((tensor({1}, {1, 1, 1}) + a).shape() == Shape{1, 2, 3});
}

TEST_CASE("unary maths and activations") {
  Tensor x = tensor({-2, -0.5f, 0.5f, 2}, {4});
  auto map = [&](float (*f)(float)) {
    std::vector<float> out;
    for (float v : values(x)) out.push_back(f(v));
    return out;
  };
  CHECK_CLOSE(values(exp(x)), map([](float v) { return std::exp(v); }));
  CHECK_CLOSE(values(abs(x)), {2, 0.5f, 0.5f, 2});
  CHECK_CLOSE(values(relu(x)), {0, 0, 0.5f, 2});
  CHECK_CLOSE(values(sigmoid(x)), map([](float v) { return 1.0f / (1.0f + std::exp(-v)); }));
  CHECK_CLOSE(values(tanh(x)), map([](float v) { return std::tanh(v); }));
  CHECK_CLOSE(values(sin(x)), map([](float v) { return std::sin(v); }));
  CHECK_CLOSE(values(cos(x)), map([](float v) { return std::cos(v); }));
  CHECK_CLOSE(values(square(x)), {4, 0.25f, 0.25f, 4});
  CHECK_CLOSE(values(clamp(x, -1.0, 1.0)), {-1, -0.5f, 0.5f, 1});
  Tensor p = abs(x);
  CHECK_CLOSE(values(log(p)), {std::log(2.0f), std::log(0.5f), std::log(0.5f), std::log(2.0f)});
  CHECK_CLOSE(values(sqrt(p)), {std::sqrt(2.0f), std::sqrt(0.5f), std::sqrt(0.5f), std::sqrt(2.0f)});
  CHECK_CLOSE(values(rsqrt(p)),
              {1 / std::sqrt(2.0f), 1 / std::sqrt(0.5f), 1 / std::sqrt(0.5f), 1 / std::sqrt(2.0f)});
  CHECK_CLOSE(values(reciprocal(p)), {0.5f, 2, 2, 0.5f});
  CHECK(error_text([&] { clamp(x, 1.0, -1.0); }) == "clamp: min 1 is greater than max -1");
}

TEST_CASE("comparisons give 0/1 f32, accept i64, and where selects") {
  Tensor a = tensor({1, 2, 3}, {3});
  Tensor b = tensor({3, 2, 1}, {3});
  CHECK_CLOSE(values(eq(a, b)), {0, 1, 0});
  CHECK_CLOSE(values(ne(a, b)), {1, 0, 1});
  CHECK_CLOSE(values(lt(a, b)), {1, 0, 0});
  CHECK_CLOSE(values(le(a, b)), {1, 1, 0});
  CHECK_CLOSE(values(gt(a, 2.0)), {0, 0, 1});
  CHECK_CLOSE(values(ge(a, 2.0)), {0, 1, 1});
  CHECK(eq(a, b).dtype() == DType::f32);
  // Accuracy the way the trainer computes it: argmax (i64) against labels (i64).
  Tensor logits = tensor({0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f}, {3, 2});
  CHECK(mean(eq(argmax(logits, 1), i64({1, 1, 1}))).item<float>() == doctest::Approx(2.0 / 3.0));
  CHECK_CLOSE(values(where(gt(a, 1.5), a, tensor({-1}, {}))), {-1, 2, 3});
  CHECK_CLOSE(values(where(tensor({1, 0}, {2, 1}), a, b)), {1, 2, 3, 3, 2, 1});
}

TEST_CASE("elementwise kernels on long dense runs (split over threads) and broadcast operands") {
  const int64_t n = 100003;                 // several pieces of a coalesced run, plus a ragged end
  Tensor x = arange(double(n), 0.0, -1.0);  // n .. 1
  const std::vector<float> xv = values(x);
  const std::vector<float> quotient = values(div(2.0, x));        // stride-0 first operand
  const std::vector<float> sums = values(add(x, full({}, 0.5)));  // stride-0 second operand
  const std::vector<float> picked = values(where(gt(x, 50000.0), x, -x));
  for (int64_t i = 0; i < n; i += 997) {
    CHECK(quotient[size_t(i)] == doctest::Approx(2.0 / xv[size_t(i)]));
    CHECK(sums[size_t(i)] == xv[size_t(i)] + 0.5f);
    CHECK(picked[size_t(i)] == (xv[size_t(i)] > 50000.0f ? xv[size_t(i)] : -xv[size_t(i)]));
  }
  CHECK(sums.back() == 1.5f);
  Tensor leaf = x.detach();
  leaf.set_requires_grad(true);
  sum(relu(leaf - 50000.0)).backward();  // ReluBackward against a stride-0 upstream gradient
  CHECK(sum(leaf.grad()).item<float>() == float(n - 50000));  // x in 50001 .. n
}

TEST_CASE("elementwise errors name the op, the shapes, dtypes and operands") {
  CHECK(error_text([] {
          add(zeros({2, 3}), zeros({4}));
        }) == "add: shapes [2,3] and [4] cannot be broadcast together (dim 1: 3 vs 4)");
  CHECK(error_text([] {
          mul(zeros({2, 3}), zeros({3, 3}));
        }) == "mul: shapes [2,3] and [3,3] cannot be broadcast together (dim 0: 2 vs 3)");
  CHECK(error_text([] { exp(arange(3, TensorOptions{}.with_dtype(DType::i64))); }) ==
        "exp: input must be f32, got i64[3] on cpu");
  CHECK(error_text([] { sub(zeros({2}), Tensor()); }) == "sub: second operand is an undefined tensor");
  CHECK_THROWS_AS(where(ones({2}), zeros({3}), zeros({2})), ShapeError);
}

// ---- reductions ----
TEST_CASE("sum, mean, max, min and arg-reductions over dims") {
  Tensor x = tensor({1, 5, 3, 4, 2, 6}, {2, 3});
  CHECK(sum(x).item<float>() == 21.0f);
  CHECK(sum(x).shape() == Shape{});
  CHECK_CLOSE(values(sum(x, 0)), {5, 7, 9});
  CHECK_CLOSE(values(sum(x, -1, true)), {9, 12});
  CHECK(sum(x, -1, true).shape() == Shape{2, 1});
  CHECK_CLOSE(values(mean(x, 1)), {3, 4});
  CHECK(mean(x).item<float>() == 3.5f);
  CHECK(max(x).item<float>() == 6.0f);
  CHECK(min(x).item<float>() == 1.0f);
  CHECK_CLOSE(values(max(x, 1)), {5, 6});
  CHECK_CLOSE(values(min(x, 0, true)), {1, 2, 3});
  CHECK(argmax(x).item<int64_t>() == 5);
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(argmin(x, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0});
  CHECK(argmax(x, 0, true).shape() == Shape{1, 3});
  CHECK(sum_squares(x).item<float>() == 91.0f);
  Tensor cube = arange(24).reshape({2, 3, 4});
  CHECK_CLOSE(values(sum(cube, {0, 2})), {60, 92, 124});  // not one block: permuted copy
  CHECK_CLOSE(values(sum(cube, {1, 2})), {66, 210});      // one block
  CHECK_CLOSE(values(sum(cube.permute({2, 0, 1}), {0})), values(sum(cube, 2)));
}

TEST_CASE("max and argmax: ties pick the first index, NaN propagates, gradients split ties") {
  Tensor tie = tensor({1, 3, 3, 2}, {4});
  CHECK(argmax(tie).item<int64_t>() == 1);
  CHECK(argmin(tensor({2, 1, 1}, {3})).item<int64_t>() == 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(max(tensor({1, nan, 3}, {3})).item<float>()));
  CHECK(argmax(tensor({1, nan, 3}, {3})).item<int64_t>() == 1);
  Tensor x = tensor({1, 3, 3, 2}, {4});
  x.set_requires_grad(true);
  max(x).backward();
  CHECK_CLOSE(values(x.grad()), {0, 0.5f, 0.5f, 0});
}

TEST_CASE("reduction errors name the op and the shape") {
  CHECK(error_text([] { sum(zeros({2, 3}), {0, 0}); }) == "sum: dim 0 appears twice in [0,0]");
  CHECK(error_text([] { sum(zeros({2, 3}), 2); }) == "sum: dim 2 is out of range for a tensor with 2 dims");
  CHECK(error_text([] {
          sum(zeros({2, 3}), std::vector<int64_t>{});
        }) == "sum: no dims given (call sum(t) to reduce over all dims)");
  CHECK(error_text([] { argmax(zeros({0})); }) == "argmax: cannot reduce over an empty dim of f32[0] on cpu");
}

TEST_CASE("large reductions split over threads give the same result as a serial double sum") {
  const int64_t rows = 3, cols = 50000;  // rows long enough to be cut into chunks
  std::vector<float> data(size_t(rows * cols));
  for (size_t i = 0; i < data.size(); ++i) data[i] = float((i * 7919) % 1000) * 1e-3f - 0.4f;
  Tensor x = tensor(data, {rows, cols});
  std::vector<float> want(rows), want_cols(cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0.0;
    for (int64_t c = 0; c < cols; ++c) total += data[size_t(r * cols + c)];
    want[size_t(r)] = float(total);
  }
  CHECK_CLOSE_EPS(values(sum(x, 1)), want, 1e-6);
  std::vector<float> col_sums = values(sum(x, 0));
  for (int64_t c = 0; c < cols; c += 9973) {
    double total = 0.0;
    for (int64_t r = 0; r < rows; ++r) total += data[size_t(r * cols + c)];
    CHECK(col_sums[size_t(c)] == doctest::Approx(total).epsilon(1e-6));
  }
  // The same chunks and merge order whatever the thread count.
  const int threads = num_threads();
  const float all_parallel = sum(x).item<float>();
  set_num_threads(1);
  const float all_serial = sum(x).item<float>();
  set_num_threads(threads);
  CHECK(all_parallel == all_serial);
  CHECK(argmax(x.flatten()).item<int64_t>() == argmax(x.flatten().reshape({1, -1}), 1).item<int64_t>());
}

// ---- shape functions ----
TEST_CASE("cat, stack and sum_to") {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({5, 6}, {1, 2});
  CHECK_CLOSE(values(cat({a, b}, 0)), {1, 2, 3, 4, 5, 6});
  CHECK_CLOSE(values(cat({a, a.t()}, 1)), {1, 2, 1, 3, 3, 4, 2, 4});
  CHECK_CLOSE(values(stack({a, a}, 0)), {1, 2, 3, 4, 1, 2, 3, 4});
  CHECK(stack({a, a}, -1).shape() == Shape{2, 2, 2});
  CHECK_CLOSE(values(stack({a, a}, -1)), {1, 1, 2, 2, 3, 3, 4, 4});
  Tensor labels = cat({i64({1, 2}), i64({3})}, 0);  // any dtype
  CHECK(labels.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
  CHECK_CLOSE(values(sum_to(arange(24).reshape({2, 3, 4}), {3, 1})), {60, 92, 124});
  CHECK(sum_to(a, {2, 2}).is_same(a));
  CHECK(error_text([&] {
          cat({a, tensor({1, 2, 3}, {1, 3})}, 0);
        }) == "cat: tensor 1 has shape [1,3], which does not match [2,2] outside dim 0");
  CHECK(error_text([&] { stack({a, b}, 0); }) == "stack: tensor 1 has shape [1,2], tensor 0 has [2,2]");
  CHECK(error_text([&] { sum_to(a, {3}); }) ==
        "sum_to: cannot sum [2,2] to [3]: the target does not broadcast to it");
  CHECK(error_text([&] { a.permute({0, 0}); }) == "permute: dim 0 appears twice in [0,0]");
  CHECK(error_text([&] { a.select(1, 2); }) ==
        "select: index 2 is out of range for dim 1 of size 2 in f32[2,2] on cpu");
  CHECK(error_text([&] { a.narrow(0, 1, 2); }) ==
        "narrow: start 1 and length 2 do not fit dim 0 of size 2 in f32[2,2] on cpu");
  CHECK(error_text([&] { a.slice(0, 0, 2, 0); }) == "slice: step must be positive, got 0");
}

TEST_CASE("slice follows Python's rules for negative and out-of-range bounds") {
  Tensor x = arange(6);
  CHECK_CLOSE(values(x.slice(0, -4, -1)), {2, 3, 4});
  CHECK_CLOSE(values(x.slice(0, 1, 100, 2)), {1, 3, 5});
  CHECK(x.slice(0, 4, 2).numel() == 0);
  CHECK_CLOSE(values(x.select(0, -1)), {5});
}

// ---- matmul ----
std::vector<float> naive_matmul(const std::vector<float>& a, const std::vector<float>& b, int64_t M,
                                int64_t K, int64_t N) {
  std::vector<float> c(size_t(M * N), 0.0f);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double total = 0.0;
      for (int64_t k = 0; k < K; ++k) total += double(a[size_t(i * K + k)]) * b[size_t(k * N + j)];
      c[size_t(i * N + j)] = float(total);
    }
  return c;
}

TEST_CASE("matmul: 2-D, batched, shared operands, every layout") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor({1, 0, -1, 2, 0, 1}, {3, 2});
  const std::vector<float> want = {-1, 7, -1, 16};
  CHECK_CLOSE(values(matmul(a, b)), want);
  CHECK_CLOSE(values(matmul(transposed_layout(a), b)), want);
  CHECK_CLOSE(values(matmul(a, transposed_layout(b))), want);
  CHECK_CLOSE(values(matmul(a.t().contiguous().t(), b.t().contiguous().t())), want);
  Tensor strided_a = cat({a, a}, 1).slice(1, 0, 6, 2);  // column stride 2: copied for gemm
  CHECK_CLOSE(values(matmul(strided_a, b)), naive_matmul(values(strided_a), values(b), 2, 3, 2));
  Tensor batch_a = stack({a, a * 2.0}, 0);
  CHECK_CLOSE(values(matmul(batch_a, b)), {-1, 7, -1, 16, -2, 14, -2, 32});
  CHECK_CLOSE(values(matmul(batch_a, stack({b, b}, 0))), {-1, 7, -1, 16, -2, 14, -2, 32});
  CHECK_CLOSE(values(matmul(a, stack({b, b * -1.0}, 0))), {-1, 7, -1, 16, 1, -7, 1, -16});
  CHECK_CLOSE(values(linear(a, b.t(), tensor({100, 200}, {2}))), {99, 207, 99, 216});
  CHECK_CLOSE(values(linear(a, b.t())), want);
}

TEST_CASE("large matmuls split over threads match a naive product") {
  Generator gen(5);
  const int64_t M = 150, K = 70, N = 90;
  Tensor a = rand({M, K}, {}, &gen, -1.0, 1.0), b = rand({K, N}, {}, &gen, -1.0, 1.0);
  const std::vector<float> want = naive_matmul(values(a), values(b), M, K, N);
  CHECK_CLOSE_EPS(values(matmul(a, b)), want, 1e-4);
  CHECK_CLOSE_EPS(values(matmul(transposed_layout(a), transposed_layout(b))), want, 1e-4);
  Tensor batched = matmul(stack({a, a, a}, 0), b);  // folded into one [3M, K] product
  CHECK_CLOSE_EPS(values(batched.select(0, 2)), want, 1e-4);
}

TEST_CASE("matmul and linear errors name both shapes") {
  CHECK(error_text([] {
          matmul(zeros({2, 3}), zeros({4, 2}));
        }) == "matmul: inner sizes differ: [2,3] · [4,2] (3 vs 4)");
  CHECK(error_text([] {
          matmul(zeros({3}), zeros({3, 2}));
        }) == "matmul: expected 2-D or 3-D operands, got [3] and [3,2]");
  CHECK(error_text([] {
          matmul(zeros({2, 2, 3}), zeros({3, 3, 2}));
        }) == "matmul: batch sizes differ: [2,2,3] · [3,3,2]");
  CHECK(error_text([] {
          linear(zeros({2, 3}), zeros({4, 2}));
        }) == "linear: expected input [N,in] and weight [out,in], got [2,3] and [4,2]");
  CHECK(error_text([] {
          linear(zeros({2, 3}), zeros({4, 3}), zeros({3}));
        }) == "linear: bias is [3], expected [4] for weight [4,3]");
}

// ---- softmax ----
TEST_CASE("softmax and log_softmax are stable and normalised along the requested dim") {
  Tensor x = tensor({1, 2, 3, 1000, 1001, 1002}, {2, 3});
  const float e0 = 1.0f / (1.0f + std::exp(1.0f) + std::exp(2.0f));
  const std::vector<float> row = {e0, e0 * std::exp(1.0f), e0 * std::exp(2.0f)};
  CHECK_CLOSE(values(softmax(x, 1)), {row[0], row[1], row[2], row[0], row[1], row[2]});
  CHECK_CLOSE(values(log_softmax(x, -1)), {std::log(row[0]), std::log(row[1]), std::log(row[2]),
                                           std::log(row[0]), std::log(row[1]), std::log(row[2])});
  Tensor cols = softmax(x.t(), 0);  // over dim 0 of a transposed view
  CHECK_CLOSE(values(cols.t()), values(softmax(x, 1)));
  CHECK_CLOSE(values(sum(softmax(arange(24).reshape({2, 3, 4}), 1), 1)), std::vector<float>(8, 1.0f));
}

TEST_CASE("one_hot marks each label and names a bad one") {
  CHECK_CLOSE(values(one_hot(i64({2, 0}), 3)), {0, 0, 1, 1, 0, 0});
  CHECK(error_text([] { one_hot(i64({0, 3, 1}), 3); }) == "one_hot: label 3 at row 1 is out of range [0, 3)");
  CHECK(error_text([] { one_hot(i64({-1}), 3); }) == "one_hot: label -1 at row 0 is out of range [0, 3)");
  CHECK(error_text([] { one_hot(zeros({2}), 3); }) == "one_hot: labels must be i64 [N], got f32[2] on cpu");
}

// ---- non-contiguous inputs to every family ----
TEST_CASE("every op family gives the same result on a non-contiguous input") {
  Generator gen(11);
  Tensor x = rand({4, 5}, {}, &gen, 0.5, 2.0);
  Tensor xt = transposed_layout(x);
  Tensor xs = stack({x, zeros_like(x)}, 1).flatten(0, 1).slice(0, 0, 8, 2);  // every other row
  REQUIRE_FALSE(xt.is_contiguous());
  REQUIRE_FALSE(xs.is_contiguous());
  for (const Tensor& v : {xt, xs}) {
    CHECK_CLOSE(values(log(v) * v + 1.0), values(log(x) * x + 1.0));
    CHECK_CLOSE(values(relu(v - 1.0)), values(relu(x - 1.0)));
    CHECK_CLOSE(values(sum(v, 0)), values(sum(x, 0)));
    CHECK_CLOSE(values(max(v, 1)), values(max(x, 1)));
    CHECK(argmax(v, 0).to_vector<int64_t>() == argmax(x, 0).to_vector<int64_t>());
    CHECK_CLOSE(values(v.reshape({20})), values(x.reshape({20})));
    CHECK_CLOSE_EPS(values(matmul(v, x.t())), values(matmul(x, x.t())), 1e-4);
    CHECK_CLOSE(values(softmax(v, 1)), values(softmax(x, 1)));
    CHECK_CLOSE(values(cat({v, x}, 1)), values(cat({x, x}, 1)));
  }
}

}  // namespace
