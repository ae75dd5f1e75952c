// Pooling on the CPU: max_pool2d's maxima, ties and NaN, avg_pool2d's two divisors,
// adaptive_avg_pool2d against PyTorch's windows, and bad geometry.
#include "ops/pool.h"
#include "tests/test_op_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace kindling;
using namespace kindling::test;

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
  expected_dx[5] = 10.0f;  // every window chose element 5
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
  for (int i = 0; i < 9; ++i) v[size_t(i)] = float(i + 1);  // [[1,2,3],[4,5,6],[7,8,9]]
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
  CHECK_THROWS_AS(max_pool2d(x, 2, 2, 2), ValueError);  // padding above half the kernel
  CHECK_THROWS_AS(avg_pool2d(x, 5), ShapeError);
  CHECK_THROWS_AS(max_pool2d(zeros({4, 4}), 2), ShapeError);
  CHECK_THROWS_AS(adaptive_avg_pool2d(x, 0), ValueError);
}
