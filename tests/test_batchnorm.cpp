// batch_norm on the CPU: batch statistics, output and unbiased running variance in training, float
// precision under a large mean, running statistics in eval, [N,C] input, finite differences, and
// every channel of the kernel's channel blocks against sums taken here.
#include "core/rng.h"
#include "ops/batchnorm.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/test_op_util.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace kindling;
using namespace kindling::test;

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
  const double expected[8] = {(1 - 2.5) * inv0 * 2 + 1,   (2 - 2.5) * inv0 * 2 + 1,
                              (0 - 2.0) * inv1 * 0.5 - 1, (0 - 2.0) * inv1 * 0.5 - 1,
                              (3 - 2.5) * inv0 * 2 + 1,   (4 - 2.5) * inv0 * 2 + 1,
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
    Tensor y1 =
        batch_norm(from_vector(one, {1, 3, 4, 4}), weight, bias, running_mean, running_var, false, 0.1, eps);
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
  CHECK_THROWS_AS(batch_norm(zeros({1, 3}), weight, bias, rm2, rv2, true), ValueError);  // 1 value/channel
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

TEST_CASE("batch_norm in channel blocks: partial last blocks and plane sizes agree with a per-channel sum") {
  // The CPU kernel walks blocks of channels (16 channels of 6-pixel planes, 4 of 256-pixel ones,
  // 1 of planes over 1024 pixels); every channel, the last block's included, must match the
  // training formulas computed here in double, forward and backward.
  Generator gen(8);
  for (const Shape& shape : {Shape{3, 37, 2, 3}, Shape{2, 9, 16, 16}, Shape{2, 3, 33, 33}}) {
    INFO("shape ", shape_str(shape));
    const int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
    const double M = double(N * HW), eps = 1e-5;
    Tensor x = randn(shape, {}, &gen, 0.5, 2.0).set_requires_grad(true);
    Tensor weight = randn({C}, {}, &gen, 1.0, 0.5).set_requires_grad(true);
    Tensor bias = randn({C}, {}, &gen).set_requires_grad(true);
    Tensor running_mean = zeros({C}), running_var = ones({C});
    Tensor y = batch_norm(x, weight, bias, running_mean, running_var, true, 0.1, eps);
    const Tensor g = randn(shape, {}, &gen);
    sum(mul(y, g)).backward();
    const std::vector<float> xv = values_of(x), yv = values_of(y), gv = values_of(g), w = values_of(weight),
                             b = values_of(bias), dx = values_of(x.grad()), dw = values_of(weight.grad()),
                             db = values_of(bias.grad()), rv = values_of(running_var);
    for (int64_t c = 0; c < C; ++c) {
      auto at = [&](int64_t n, int64_t i) { return size_t((n * C + c) * HW + i); };
      double s = 0, q = 0, sg = 0, sgx = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) s += xv[at(n, i)], sg += gv[at(n, i)];
      const double mean = s / M;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i)
          q += (xv[at(n, i)] - mean) * (xv[at(n, i)] - mean), sgx += gv[at(n, i)] * (xv[at(n, i)] - mean);
      const double invstd = 1 / std::sqrt(q / M + eps), sgxhat = sgx * invstd;
      INFO("channel ", c);
      CHECK(rv[size_t(c)] == doctest::Approx(0.9 + 0.1 * q / (M - 1)).epsilon(1e-5));
      CHECK(db[size_t(c)] == doctest::Approx(sg).epsilon(1e-4));
      CHECK(dw[size_t(c)] == doctest::Approx(sgxhat).epsilon(1e-4));
      double y_error = 0, dx_error = 0;  // largest |found - expected|
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          const double xhat = (xv[at(n, i)] - mean) * invstd;
          y_error = std::max(y_error, std::fabs(yv[at(n, i)] - (xhat * w[size_t(c)] + b[size_t(c)])));
          const double expected_dx = w[size_t(c)] * invstd * (gv[at(n, i)] - sg / M - xhat * sgxhat / M);
          dx_error = std::max(dx_error, std::fabs(dx[at(n, i)] - expected_dx));
        }
      CHECK(y_error < 1e-5);
      CHECK(dx_error < 1e-5);
    }
  }
}
