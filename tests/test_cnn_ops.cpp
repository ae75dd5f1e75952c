// CNN ops on the CPU: conv2d against the reference kernels and finite differences, pooling values, batch
// norm statistics and running-stat updates, dropout masks, and the fused optimizer kernels against
// the formulas in core/backend.h.
#include "core/autograd.h"
#include "core/backend.h"
#include "core/rng.h"
#include "ops/batchnorm.h"
#include "ops/conv.h"
#include "ops/cpu/reference/reference_backend.h"
#include "ops/dropout.h"
#include "ops/pool.h"
#include "ops/registry.h"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

using namespace kindling;

namespace {

std::vector<float> values_of(const Tensor& t) { return t.contiguous().to_vector<float>(); }

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  return worst;
}

// sum(out * probe) for a fixed probe: a scalar whose gradient is probe pushed back through the op.
double probe_sum(const Tensor& out, const std::vector<float>& probe) {
  const std::vector<float> v = values_of(out);
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * probe[i];
  return s;
}

// Checks the analytic gradient of sum(f(inputs) * probe) with respect to inputs[which] against
// central differences in double-checked float32 (step 1e-2, tolerance relative to max(1, |g|)).
void check_gradient(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                    size_t which, double tolerance = 2e-2) {
  Generator gen(99);
  Tensor out = f(inputs);
  std::vector<float> probe(size_t(out.numel()));
  for (float& v : probe) v = float(gen.uniform() * 2.0 - 1.0);
  out.backward(from_vector(probe, out.shape()));
  const std::vector<float> analytic = values_of(inputs[which].grad());
  std::vector<float> base = values_of(inputs[which]);
  const double step = 1e-2;
  for (size_t i = 0; i < base.size(); ++i) {
    std::vector<float> plus = base, minus = base;
    plus[i] += float(step);
    minus[i] -= float(step);
    std::vector<Tensor> in_plus = inputs, in_minus = inputs;
    in_plus[which] = from_vector(plus, inputs[which].shape());
    in_minus[which] = from_vector(minus, inputs[which].shape());
    NoGradGuard no_grad;
    const double numeric = (probe_sum(f(in_plus), probe) - probe_sum(f(in_minus), probe)) / (2 * step);
    INFO("input ", which, " element ", i, ": analytic ", analytic[i], ", numeric ", numeric);
    CHECK(std::fabs(analytic[i] - numeric) <= tolerance * std::max(1.0, std::fabs(numeric)));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// conv2d

namespace {

// The oracle: the reference kernels (ops/cpu/reference/conv.cpp), the definition summed in double.
std::vector<float> reference_conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  Tensor y = empty({p.N, p.K, p.P, p.Q});
  reference_cpu_backend().conv2d_fwd(p, y, x.contiguous(), w.contiguous(), bias);
  return values_of(y);
}

struct ConvCase {
  Shape x, w;
  Size2 stride, padding, dilation;
  int64_t groups;
  bool bias;
};

const ConvCase kConvCases[] = {
    {{2, 3, 7, 7}, {4, 3, 3, 3}, 1, 1, 1, 1, true},
    {{3, 3, 8, 7}, {5, 3, 3, 3}, 2, 1, 1, 1, false},
    {{2, 2, 9, 6}, {3, 2, 3, 2}, Size2{2, 1}, Size2{0, 2}, 1, 1, true},
    {{2, 2, 9, 8}, {3, 2, 3, 3}, 1, 2, 2, 1, true},
    {{2, 2, 9, 8}, {3, 2, 3, 3}, 3, Size2{1, 3}, Size2{2, 1}, 1, false},
    {{2, 4, 6, 6}, {6, 2, 3, 3}, 1, 1, 1, 2, true},
    {{2, 6, 7, 7}, {6, 1, 3, 3}, 2, 1, 1, 6, false},
    {{3, 4, 5, 6}, {5, 4, 1, 1}, 1, 0, 1, 1, true},
    {{3, 4, 5, 6}, {6, 2, 1, 1}, 1, 0, 1, 2, true},
    {{3, 4, 5, 6}, {5, 4, 1, 1}, 2, 0, 1, 1, false},
    {{2, 3, 5, 5}, {2, 3, 5, 5}, 1, 0, 1, 1, true},      // window = image: one output pixel
    {{2, 3, 4, 4}, {2, 3, 3, 3}, 1, 3, 1, 1, false},     // padding wider than the kernel
    {{9, 8, 8, 8}, {16, 8, 3, 3}, 1, 1, 1, 1, true},     // several images share one GEMM
    {{5, 16, 4, 4}, {8, 8, 3, 3}, 2, 1, 1, 2, true},    // batched columns with groups, ragged chunk
    {{3, 3, 7, 9}, {4, 3, 3, 3}, Size2{1, 2}, Size2{2, 1}, Size2{2, 1}, 1, true},   // small plane, 35 pixels
};

}  // namespace

TEST_CASE("conv2d forward matches the reference kernel") {
  Generator gen(1);
  for (const ConvCase& cc : kConvCases) {
    Tensor x = randn(cc.x, {}, &gen), w = randn(cc.w, {}, &gen);
    Tensor b = cc.bias ? randn({cc.w[0]}, {}, &gen) : Tensor();
    const Conv2dParams p = conv2d_params(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    Tensor y = conv2d(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    CHECK(y.shape() == Shape{p.N, p.K, p.P, p.Q});
    const std::vector<float> expected = reference_conv2d(x, w, b, p);
    INFO("x ", shape_str(cc.x), " w ", shape_str(cc.w), " groups ", cc.groups);
    CHECK(max_abs_diff(values_of(y), expected) < 1e-4);
  }
}

// The data and weight gradients of sum(y * dy) from the reference kernels.
struct ConvGrads {
  std::vector<float> dx, dw, db;
};
ConvGrads reference_conv2d_grads(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dParams& p) {
  Tensor dx = empty(x.shape()), dw = empty(w.shape()), db = empty({p.K});
  reference_cpu_backend().conv2d_bwd_data(p, dx, dy.contiguous(), w.contiguous());
  reference_cpu_backend().conv2d_bwd_weight(p, dw, db, x.contiguous(), dy.contiguous());
  return {values_of(dx), values_of(dw), values_of(db)};
}

double max_relative_diff(const std::vector<float>& got, const std::vector<float>& want) {
  double scale = 1.0;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  return max_abs_diff(got, want) / scale;
}

TEST_CASE("conv2d gradients match the reference kernels on every lowering") {
  // Covers both lowerings (phased: stride 1 and 2, 1×1 read in place; columns: small planes,
  // strided 1×1), the three weight-gradient kernels (channels-last for 16k channels per group,
  // dot products otherwise, transposed columns), dilation, groups, uneven padding and strides,
  // and batches that do not divide among the threads.
  const ConvCase cases[] = {
      {{3, 16, 9, 7}, {8, 16, 3, 3}, 1, 1, 1, 1, true},
      {{5, 32, 6, 10}, {8, 16, 3, 3}, 1, 1, 1, 2, false},
      {{2, 16, 11, 9}, {4, 16, 3, 3}, 1, Size2{2, 3}, 2, 1, true},
      {{4, 16, 8, 8}, {16, 16, 3, 3}, 1, 0, 1, 1, false},
      {{3, 32, 5, 6}, {24, 32, 1, 1}, 1, 0, 1, 1, true},
      {{3, 16, 8, 8}, {24, 16, 3, 3}, 2, 1, 1, 1, true},
      {{3, 16, 7, 9}, {8, 16, 1, 1}, 2, 0, 1, 1, false},
      {{7, 3, 12, 12}, {16, 3, 3, 3}, 1, 1, 1, 1, true},
      {{2, 8, 6, 5}, {8, 8, 3, 3}, 1, 1, 1, 1, false},
      {{2, 16, 5, 5}, {16, 16, 1, 1}, 1, 1, 1, 1, false},   // 1×1 padded beyond the window
      {{2, 16, 9, 8}, {24, 16, 1, 1}, 1, 0, 1, 1, true},    // 1×1 read in place (no copy)
      {{2, 16, 20, 19}, {8, 16, 3, 3}, 2, 1, 1, 1, false},  // strided, phased
      {{3, 32, 10, 11}, {8, 16, 3, 3}, Size2{2, 1}, 1, 1, 2, true},   // phased, stride 2x1, groups
      {{5, 16, 7, 9}, {8, 16, 3, 3}, Size2{1, 2}, Size2{2, 1}, Size2{2, 1}, 1, true},   // columns, dilated, 35 pixels
      {{7, 32, 4, 4}, {32, 32, 3, 3}, 1, 1, 1, 1, false},   // 4x4 plane, images split unevenly over chunks
  };
  Generator gen(12);
  for (const ConvCase& cc : cases) {
    Tensor x = randn(cc.x, {}, &gen).set_requires_grad(true), w = randn(cc.w, {}, &gen).set_requires_grad(true);
    Tensor b = cc.bias ? randn({cc.w[0]}, {}, &gen).set_requires_grad(true) : Tensor();
    const Conv2dParams p = conv2d_params(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    Tensor y = conv2d(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    Tensor dy = randn(y.shape(), {}, &gen);
    y.backward(dy);
    const ConvGrads want = reference_conv2d_grads(x.detach(), w.detach(), dy, p);
    INFO("x ", shape_str(cc.x), " w ", shape_str(cc.w), " groups ", cc.groups, " stride ", cc.stride.h);
    CHECK(max_relative_diff(values_of(x.grad()), want.dx) < 1e-5);
    CHECK(max_relative_diff(values_of(w.grad()), want.dw) < 1e-5);
    if (cc.bias) CHECK(max_relative_diff(values_of(b.grad()), want.db) < 1e-5);
  }
}

TEST_CASE("conv2d output sizes follow PyTorch's formula") {
  Tensor x = zeros({1, 2, 10, 7}), w = zeros({3, 2, 3, 2});
  const Conv2dParams p = conv2d_params(x, w, {}, Size2{3, 2}, Size2{1, 0}, Size2{2, 1}, 1);
  CHECK(p.P == (10 + 2 - 2 * 2 - 1) / 3 + 1);
  CHECK(p.Q == (7 - 1 - 1) / 2 + 1);
}

TEST_CASE("conv2d backward matches finite differences") {
  Generator gen(2);
  for (const ConvCase& cc : kConvCases) {
    if (cc.x[0] * cc.x[1] * cc.x[2] * cc.x[3] > 400) continue;   // keep the walk short
    std::vector<Tensor> inputs{randn(cc.x, {}, &gen).set_requires_grad(true),
                               randn(cc.w, {}, &gen).set_requires_grad(true)};
    if (cc.bias) inputs.push_back(randn({cc.w[0]}, {}, &gen).set_requires_grad(true));
    auto f = [&cc](const std::vector<Tensor>& in) {
      return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), cc.stride, cc.padding, cc.dilation,
                    cc.groups);
    };
    INFO("x ", shape_str(cc.x), " w ", shape_str(cc.w), " groups ", cc.groups);
    for (size_t which = 0; which < inputs.size(); ++which) {
      std::vector<Tensor> fresh;
      for (const Tensor& t : inputs) fresh.push_back(t.detach().clone().set_requires_grad(true));
      check_gradient(f, fresh, which);
    }
  }
}

TEST_CASE("conv2d rejects mismatched shapes with a named error") {
  Tensor x = zeros({1, 4, 5, 5});
  CHECK_THROWS_AS(conv2d(x, zeros({3, 3, 3, 3})), ShapeError);
  CHECK_THROWS_AS(conv2d(x, zeros({3, 2, 3, 3}), {}, 1, 0, 1, 2), ShapeError);   // K=3 not divisible
  CHECK_THROWS_AS(conv2d(x, zeros({2, 4, 7, 7})), ShapeError);                  // window too big
  CHECK_THROWS_AS(conv2d(x, zeros({2, 4, 3, 3}), zeros({3})), ShapeError);
  CHECK_THROWS_AS(conv2d(zeros({4, 5, 5}), zeros({2, 4, 3, 3})), ShapeError);
  CHECK_THROWS_AS(conv2d(x, zeros({2, 4, 3, 3}), {}, 0), ValueError);
}

// ---------------------------------------------------------------------------------------------
// pooling

TEST_CASE("max_pool2d picks the window maxima and routes gradients to them") {
  // x = 0..15 in a 4x4 plane, with 100 at (1,1) so one element wins two overlapping windows.
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[size_t(i)] = float(i);
  v[5] = 100.0f;
  Tensor x = from_vector(v, {1, 1, 4, 4}).set_requires_grad(true);
  Tensor y = max_pool2d(x, 2);
  CHECK(values_of(y) == std::vector<float>{100, 7, 13, 15});
  // 3x3 stride 2 pad 1: windows span rows/cols -1..1 and 1..3, so all four contain (1,1).
  Tensor y3 = max_pool2d(x, 3, 2, 1);
  CHECK(values_of(y3) == std::vector<float>{100, 100, 100, 100});
  y3.backward(from_vector(std::vector<float>{1, 2, 3, 4}, {1, 1, 2, 2}));
  std::vector<float> expected_dx(16, 0.0f);
  expected_dx[5] = 10.0f;   // every window chose element 5
  CHECK(values_of(x.grad()) == expected_dx);
  // Without the 100: the windows' maxima are at their bottom-right in-bounds corners.
  v[5] = 5.0f;
  CHECK(values_of(max_pool2d(from_vector(v, {1, 1, 4, 4}), 3, 2, 1)) == std::vector<float>{5, 7, 13, 15});
}

TEST_CASE("max_pool2d breaks ties by the first element and propagates NaN") {
  Tensor x = from_vector(std::vector<float>{2, 2, 1, 2, 0, NAN, 0, 1}, {1, 2, 2, 2}).set_requires_grad(true);
  Tensor y = max_pool2d(x, 2);
  const std::vector<float> out = values_of(y);
  CHECK(out[0] == 2.0f);
  CHECK(std::isnan(out[1]));
  y.backward(from_vector(std::vector<float>{1, 1}, {1, 2, 1, 1}));
  const std::vector<float> dx = values_of(x.grad());
  CHECK(dx == std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0});
}

TEST_CASE("max_pool2d sends the gradient of a window holding two NaNs to the last one") {
  // One 2x2 window [[NaN, 1], [NaN, 0]]: the output is NaN and the winner is (1,0), PyTorch's choice.
  Tensor x = from_vector(std::vector<float>{NAN, 1, NAN, 0}, {1, 1, 2, 2}).set_requires_grad(true);
  Tensor y = max_pool2d(x, 2);
  CHECK(std::isnan(values_of(y)[0]));
  y.backward(from_vector(std::vector<float>{1}, {1, 1, 1, 1}));
  CHECK(values_of(x.grad()) == std::vector<float>{0, 0, 1, 0});
}

TEST_CASE("avg_pool2d divides by the padded window or the in-bounds count") {
  std::vector<float> v(9);
  for (int i = 0; i < 9; ++i) v[size_t(i)] = float(i + 1);   // [[1,2,3],[4,5,6],[7,8,9]]
  Tensor x = from_vector(v, {1, 1, 3, 3});
  // 3x3 stride 1 pad 1: corner (0,0) sees 1,2,4,5 (sum 12) of a 9-element padded window.
  const std::vector<float> with_pad = values_of(avg_pool2d(x, 3, 1, 1, true));
  const std::vector<float> without_pad = values_of(avg_pool2d(x, 3, 1, 1, false));
  CHECK(with_pad[0] == doctest::Approx(12.0 / 9));
  CHECK(without_pad[0] == doctest::Approx(12.0 / 4));
  CHECK(with_pad[1] == doctest::Approx((1 + 2 + 3 + 4 + 5 + 6) / 9.0));
  CHECK(without_pad[1] == doctest::Approx((1 + 2 + 3 + 4 + 5 + 6) / 6.0));
  CHECK(with_pad[4] == doctest::Approx(5.0));
  // 2x2 stride 2 on 4x4: plain block means; the backward spreads dy/4 over each block.
  std::vector<float> w(16);
  for (int i = 0; i < 16; ++i) w[size_t(i)] = float(i);
  Tensor x4 = from_vector(w, {1, 1, 4, 4}).set_requires_grad(true);
  Tensor y4 = avg_pool2d(x4, 2);
  CHECK(values_of(y4) == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});
  y4.backward(from_vector(std::vector<float>{4, 8, 12, 16}, {1, 1, 2, 2}));
  const std::vector<float> dx = values_of(x4.grad());
  CHECK(dx[0] == 1.0f);
  CHECK(dx[3] == 2.0f);
  CHECK(dx[12] == 3.0f);
  CHECK(dx[15] == 4.0f);
}

TEST_CASE("adaptive_avg_pool2d uses PyTorch's windows") {
  Generator gen(3);
  const int64_t H = 5, W = 7;
  Tensor x = randn({2, 3, H, W}, {}, &gen);
  const std::vector<float> xv = values_of(x);
  auto naive = [&](int64_t oh, int64_t ow) {
    std::vector<float> out;
    for (int64_t plane = 0; plane < 6; ++plane)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t h0 = i * H / oh, h1 = ((i + 1) * H + oh - 1) / oh;
          const int64_t w0 = j * W / ow, w1 = ((j + 1) * W + ow - 1) / ow;
          double s = 0;
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) s += xv[size_t(plane * H * W + h * W + w)];
          out.push_back(float(s / double((h1 - h0) * (w1 - w0))));
        }
    return out;
  };
  CHECK(max_abs_diff(values_of(adaptive_avg_pool2d(x, 1)), naive(1, 1)) < 1e-5);
  CHECK(adaptive_avg_pool2d(x, 1).shape() == Shape{2, 3, 1, 1});
  CHECK(max_abs_diff(values_of(adaptive_avg_pool2d(x, {5, 7})), xv) < 1e-6);
  CHECK(max_abs_diff(values_of(adaptive_avg_pool2d(x, {3, 2})), naive(3, 2)) < 1e-5);
  CHECK(max_abs_diff(values_of(adaptive_avg_pool2d(x, {2, 4})), naive(2, 4)) < 1e-5);
}

TEST_CASE("pooling rejects bad geometry") {
  Tensor x = zeros({1, 1, 4, 4});
  CHECK_THROWS_AS(max_pool2d(x, 2, 2, 2), ValueError);   // padding above half the kernel
  CHECK_THROWS_AS(avg_pool2d(x, 5), ShapeError);
  CHECK_THROWS_AS(max_pool2d(zeros({4, 4}), 2), ShapeError);
  CHECK_THROWS_AS(adaptive_avg_pool2d(x, 0), ValueError);
}

// ---------------------------------------------------------------------------------------------
// batch norm

TEST_CASE("batch_norm training: batch statistics, output, unbiased running variance") {
  // Channel 0 holds 1,2,3,4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1 holds 0,0,2,6
  // (mean 2, biased var 6, unbiased 8).
  Tensor x = from_vector(std::vector<float>{1, 2, 0, 0, 3, 4, 2, 6}, {2, 2, 1, 2});
  Tensor weight = from_vector(std::vector<float>{2, 0.5f}, {2});
  Tensor bias = from_vector(std::vector<float>{1, -1}, {2});
  Tensor running_mean = from_vector(std::vector<float>{0.5f, 0}, {2});
  Tensor running_var = from_vector(std::vector<float>{1, 2}, {2});
  const uint64_t version_before = running_mean.storage()->version();
  const double eps = 1e-5;
  Tensor y = batch_norm(x, weight, bias, running_mean, running_var, true, 0.1, eps);
  const std::vector<float> out = values_of(y);
  const double inv0 = 1 / std::sqrt(1.25 + eps), inv1 = 1 / std::sqrt(6.0 + eps);
  const double expected[8] = {(1 - 2.5) * inv0 * 2 + 1, (2 - 2.5) * inv0 * 2 + 1, (0 - 2.0) * inv1 * 0.5 - 1,
                              (0 - 2.0) * inv1 * 0.5 - 1, (3 - 2.5) * inv0 * 2 + 1, (4 - 2.5) * inv0 * 2 + 1,
                              (2 - 2.0) * inv1 * 0.5 - 1, (6 - 2.0) * inv1 * 0.5 - 1};
  for (size_t i = 0; i < 8; ++i) CHECK(out[i] == doctest::Approx(expected[i]).epsilon(1e-6));
  const std::vector<float> rm = values_of(running_mean), rv = values_of(running_var);
  CHECK(rm[0] == doctest::Approx(0.9 * 0.5 + 0.1 * 2.5));
  CHECK(rm[1] == doctest::Approx(0.1 * 2.0));
  CHECK(rv[0] == doctest::Approx(0.9 * 1 + 0.1 * (5.0 / 3.0)));
  CHECK(rv[1] == doctest::Approx(0.9 * 2 + 0.1 * 8.0));
  CHECK(running_mean.storage()->version() > version_before);
}

TEST_CASE("batch_norm subtracts the mean before scaling, so a large mean keeps float precision") {
  // x = [9999.95508, 9999.95117] as [2,1,1,1], eps 1e-5, no affine: the exact output is +-0.5255;
  // scale*x + shift with the shift taken in double loses ~0.2 of it to cancellation.
  const std::vector<float> v{9999.95508f, 9999.95117f};
  Tensor x = from_vector(v, {2, 1, 1, 1});
  const double mean = (double(v[0]) + double(v[1])) / 2;
  const double var = ((v[0] - mean) * (v[0] - mean) + (v[1] - mean) * (v[1] - mean)) / 2;
  const std::vector<float> train =
      values_of(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5));
  for (size_t i = 0; i < 2; ++i)
    CHECK(train[i] == doctest::Approx((v[i] - mean) / std::sqrt(var + 1e-5)).epsilon(1e-4));
  // Evaluation with the same statistics as running stats: the same precision.
  Tensor running_mean = from_vector(std::vector<float>{float(mean)}, {1});
  Tensor running_var = from_vector(std::vector<float>{float(var)}, {1});
  const std::vector<float> eval =
      values_of(batch_norm(x, Tensor(), Tensor(), running_mean, running_var, false, 0.1, 1e-5));
  for (size_t i = 0; i < 2; ++i)
    CHECK(eval[i] ==
          doctest::Approx((v[i] - float(mean)) / std::sqrt(double(float(var)) + 1e-5)).epsilon(1e-4));
}

TEST_CASE("batch_norm eval uses the running statistics and ignores the rest of the batch") {
  Generator gen(4);
  Tensor x = randn({6, 3, 4, 4}, {}, &gen, 1.0, 3.0);
  Tensor weight = randn({3}, {}, &gen), bias = randn({3}, {}, &gen);
  Tensor running_mean = randn({3}, {}, &gen), running_var = rand({3}, {}, &gen, 0.5, 2.0);
  const double eps = 1e-3;
  Tensor y = batch_norm(x, weight, bias, running_mean, running_var, false, 0.1, eps);
  const std::vector<float> xv = values_of(x), yv = values_of(y), w = values_of(weight), b = values_of(bias),
                           rm = values_of(running_mean), rv = values_of(running_var);
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = (i / 16) % 3;
    CHECK(yv[i] == doctest::Approx((xv[i] - rm[c]) / std::sqrt(rv[c] + eps) * w[c] + b[c]).epsilon(1e-5));
  }
  // One sample alone gives the same rows as inside the batch; the running stats do not move.
  for (int64_t n : {0, 4}) {
    std::vector<float> one(xv.begin() + n * 48, xv.begin() + (n + 1) * 48);
    Tensor y1 = batch_norm(from_vector(one, {1, 3, 4, 4}), weight, bias, running_mean, running_var, false, 0.1, eps);
    const std::vector<float> y1v = values_of(y1);
    CHECK(std::equal(y1v.begin(), y1v.end(), yv.begin() + n * 48));
  }
  CHECK(values_of(running_mean) == rm);
  CHECK(values_of(running_var) == rv);
}

TEST_CASE("batch_norm on [N,C] input matches [N,C,1,1]") {
  Generator gen(5);
  Tensor x = randn({7, 3}, {}, &gen);
  Tensor weight = randn({3}, {}, &gen), bias = randn({3}, {}, &gen);
  Tensor rm2 = zeros({3}), rv2 = ones({3}), rm4 = zeros({3}), rv4 = ones({3});
  Tensor y2 = batch_norm(x, weight, bias, rm2, rv2, true);
  Tensor y4 = batch_norm(from_vector(values_of(x), {7, 3, 1, 1}), weight, bias, rm4, rv4, true);
  CHECK(y2.shape() == Shape{7, 3});
  CHECK(values_of(y2) == values_of(y4));
  CHECK(values_of(rv2) == values_of(rv4));
  CHECK_THROWS_AS(batch_norm(zeros({1, 3}), weight, bias, rm2, rv2, true), ValueError);   // 1 value/channel
  CHECK_THROWS_AS(batch_norm(zeros({2, 4}), weight, bias, rm2, rv2, true), ShapeError);
}

TEST_CASE("batch_norm gradients match finite differences in training and eval mode") {
  Generator gen(6);
  for (bool training : {true, false}) {
    for (const Shape& shape : {Shape{3, 2, 2, 3}, Shape{6, 3}}) {
      const int64_t C = shape[1];
      Tensor running_var = rand({C}, {}, &gen, 0.5, 2.0), running_mean = randn({C}, {}, &gen);
      auto f = [&](const std::vector<Tensor>& in) {
        Tensor rm = running_mean.detach().clone(), rv = running_var.detach().clone();
        return batch_norm(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5);
      };
      std::vector<Tensor> inputs{randn(shape, {}, &gen, 0.3, 1.5), randn({C}, {}, &gen, 1.0, 0.5),
                                 randn({C}, {}, &gen)};
      INFO("training ", training, " shape ", shape_str(shape));
      for (size_t which = 0; which < 3; ++which) {
        std::vector<Tensor> fresh;
        for (const Tensor& t : inputs) fresh.push_back(t.detach().clone().set_requires_grad(true));
        check_gradient(f, fresh, which, 3e-2);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// dropout

TEST_CASE("dropout draws the counter-based mask and is reproducible") {
  const int64_t n = 100000;
  Tensor x = ones({n});
  Generator gen(42);
  const uint64_t first = gen.state().counter;
  const std::vector<float> a = values_of(dropout(x, 0.3, true, gen));
  CHECK(gen.state().counter == first + uint64_t(n));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = bits_to_unit_float(random_bits(42, first + uint64_t(i))) >= 0.3f;
    CHECK_MESSAGE(a[size_t(i)] == (keep ? 1.0f / 0.7f : 0.0f), "element ", i);
    kept += keep;
    if (a[size_t(i)] != (keep ? 1.0f / 0.7f : 0.0f)) break;
  }
  CHECK(std::fabs(double(kept) / double(n) - 0.7) < 0.01);
  // The same state gives the same mask; the advanced state a different one.
  Generator again(42);
  CHECK(values_of(dropout(x, 0.3, true, again)) == a);
  CHECK(values_of(dropout(x, 0.3, true, gen)) != a);
}

TEST_CASE("dropout edge cases and gradient") {
  Generator gen(7);
  Tensor x = randn({3, 4}, {}, &gen).set_requires_grad(true);
  CHECK(dropout(x, 0.0, true, gen).is_same(x));
  CHECK(dropout(x, 0.5, false, gen).is_same(x));
  const std::vector<float> zero = values_of(dropout(x, 1.0, true, gen));
  CHECK(zero == std::vector<float>(12, 0.0f));
  CHECK_THROWS_AS(dropout(x, 1.5, true, gen), ValueError);
  Generator g1(9);
  Tensor y = dropout(x, 0.5, true, g1);
  y.backward(ones({3, 4}));
  Generator g2(9);
  const std::vector<float> mask = values_of(dropout(ones({3, 4}), 0.5, true, g2));
  CHECK(values_of(x.grad()) == mask);
}

// ---------------------------------------------------------------------------------------------
// optimizer kernels, against the formulas in core/backend.h in double

TEST_CASE("sgd_step follows PyTorch's SGD over several steps") {
  struct Variant { float momentum, dampening, weight_decay; bool nesterov; };
  const Variant variants[] = {{0, 0, 0, false}, {0, 0, 0.1f, false}, {0.9f, 0, 0, false},
                              {0.9f, 0.3f, 0.05f, false}, {0.8f, 0, 0.01f, true}};
  for (const Variant& v : variants) {
    Generator gen(8);
    const int64_t n = 40000;   // above the parallel grain
    Tensor param = randn({n}, {}, &gen), buffer = zeros({n});
    const std::vector<float> p0 = values_of(param);
    std::vector<double> p(p0.begin(), p0.end());
    std::vector<double> buf(static_cast<size_t>(n), 0.0);
    const float lr = 0.05f;
    for (int step = 0; step < 3; ++step) {
      Tensor grad = randn({n}, {}, &gen);
      const std::vector<float> g = values_of(grad);
      SgdArgs args{lr, v.momentum, v.dampening, v.weight_decay, v.nesterov, step == 0};
      backend(Device::cpu()).sgd_step(param, grad, v.momentum != 0 ? buffer : Tensor(), args);
      for (size_t i = 0; i < p.size(); ++i) {
        double d = g[i] + double(v.weight_decay) * p[i];
        if (v.momentum != 0) {
          buf[i] = step == 0 ? d : v.momentum * buf[i] + (1.0 - v.dampening) * d;
          d = v.nesterov ? d + v.momentum * buf[i] : buf[i];
        }
        p[i] -= lr * d;
      }
    }
    const std::vector<float> got = values_of(param);
    double worst = 0;
    for (size_t i = 0; i < p.size(); ++i) worst = std::max(worst, std::fabs(got[i] - p[i]));
    INFO("momentum ", v.momentum, " dampening ", v.dampening, " wd ", v.weight_decay, " nesterov ", v.nesterov);
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("adamw_step follows the decoupled-decay formula with bias correction") {
  Generator gen(10);
  const int64_t n = 40000;
  Tensor param = randn({n}, {}, &gen), m = zeros({n}), v = zeros({n});
  const std::vector<float> p0 = values_of(param);
  std::vector<double> p(p0.begin(), p0.end()), md(size_t(n), 0.0), vd(size_t(n), 0.0);
  const double lr = 1e-2, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
  for (int64_t t = 1; t <= 4; ++t) {
    Tensor grad = randn({n}, {}, &gen, 0.0, 0.1);
    const std::vector<float> g = values_of(grad);
    AdamWArgs args{float(lr), float(b1), float(b2), float(eps), float(wd), t};
    backend(Device::cpu()).adamw_step(param, grad, m, v, args);
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= lr * wd * p[i];
      md[i] = b1 * md[i] + (1 - b1) * g[i];
      vd[i] = b2 * vd[i] + (1 - b2) * double(g[i]) * g[i];
      const double m_hat = md[i] / (1 - std::pow(b1, double(t))), v_hat = vd[i] / (1 - std::pow(b2, double(t)));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
  const std::vector<float> got = values_of(param), got_m = values_of(m), got_v = values_of(v);
  double worst = 0, worst_m = 0, worst_v = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    worst = std::max(worst, std::fabs(got[i] - p[i]));
    worst_m = std::max(worst_m, std::fabs(got_m[i] - md[i]));
    worst_v = std::max(worst_v, std::fabs(got_v[i] - vd[i]));
  }
  CHECK(worst < 1e-5);
  CHECK(worst_m < 1e-7);
  CHECK(worst_v < 1e-8);
}

// ---------------------------------------------------------------------------------------------
// the registry cases of this family, walked here as well as in test_gradcheck

TEST_CASE("CNN registry cases pass a finite-difference gradient check") {
  OpCases cases;
  add_conv_cases(cases);
  add_pool_cases(cases);
  add_batchnorm_cases(cases);
  add_dropout_cases(cases);
  CHECK(cases.size() >= 20);
  for (const OpCase& c : cases) {
    Generator gen(11);
    const std::vector<Tensor> inputs = c.make_inputs(gen);
    INFO("case ", c.name);
    // The forward is deterministic: two calls agree exactly.
    {
      NoGradGuard no_grad;
      CHECK(values_of(c.forward(inputs)) == values_of(c.forward(inputs)));
    }
    for (size_t which = 0; which < inputs.size(); ++which) {
      if (!inputs[which].requires_grad()) continue;
      std::vector<Tensor> fresh;
      for (const Tensor& t : inputs) fresh.push_back(t.detach().clone().set_requires_grad(t.requires_grad()));
      check_gradient(c.forward, fresh, which, c.tolerance);
    }
  }
}
