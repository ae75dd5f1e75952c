// conv2d on the CPU: forward and both gradients against the reference kernels
// (ops/cpu/reference/conv.cpp) on every lowering, PyTorch's output sizes, finite differences, and
// errors naming the shapes.
#include "core/rng.h"
#include "ops/conv.h"
#include "ops/cpu/conv_winograd.h"
#include "ops/cpu/reference/reference_backend.h"
#include "tests/test_op_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <vector>

using namespace kindling;
using namespace kindling::test;

namespace {

// The oracle: the reference kernels (ops/cpu/reference/conv.cpp), the definition summed in double.
std::vector<float> reference_conv2d(const Tensor& x, const Tensor& w, const Tensor& bias,
                                    const Conv2dParams& p) {
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
    {{2, 3, 5, 5}, {2, 3, 5, 5}, 1, 0, 1, 1, true},   // window = image: one output pixel
    {{2, 3, 4, 4}, {2, 3, 3, 3}, 1, 3, 1, 1, false},  // padding wider than the kernel
    {{9, 8, 8, 8}, {16, 8, 3, 3}, 1, 1, 1, 1, true},  // several images share one GEMM
    {{5, 16, 4, 4}, {8, 8, 3, 3}, 2, 1, 1, 2, true},  // batched columns with groups, ragged chunk
    {{3, 3, 7, 9}, {4, 3, 3, 3}, Size2{1, 2}, Size2{2, 1}, Size2{2, 1}, 1, true},  // small plane, 35 pixels
};

}  // namespace

TEST_CASE("conv2d forward matches the reference kernel") {
  const ScopedEnv direct("KINDLING_WINOGRAD", "0");  // the direct kernels; Winograd has its own cases
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
  const ScopedEnv direct("KINDLING_WINOGRAD", "0");  // the direct kernels; Winograd has its own cases
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
      {{2, 16, 5, 5}, {16, 16, 1, 1}, 1, 1, 1, 1, false},            // 1×1 padded beyond the window
      {{2, 16, 9, 8}, {24, 16, 1, 1}, 1, 0, 1, 1, true},             // 1×1 read in place (no copy)
      {{2, 16, 20, 19}, {8, 16, 3, 3}, 2, 1, 1, 1, false},           // strided, phased
      {{3, 32, 10, 11}, {8, 16, 3, 3}, Size2{2, 1}, 1, 1, 2, true},  // phased, stride 2x1, groups
      // columns, dilated, 35 pixels
      {{5, 16, 7, 9}, {8, 16, 3, 3}, Size2{1, 2}, Size2{2, 1}, Size2{2, 1}, 1, true},
      {{7, 32, 4, 4}, {32, 32, 3, 3}, 1, 1, 1, 1, false},  // 4x4 plane, images split unevenly over chunks
  };
  Generator gen(12);
  for (const ConvCase& cc : cases) {
    Tensor x = randn(cc.x, {}, &gen).set_requires_grad(true),
           w = randn(cc.w, {}, &gen).set_requires_grad(true);
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

TEST_CASE("Winograd F(2x2,3x3) and F(4x4,3x3) match the reference kernels, forward and both gradients") {
  // Called directly, whatever winograd_tile says: output sizes that are and are not multiples of
  // the tile (a last tile cropped), paddings 0..2 (the data gradient's padding is 2 - padding),
  // channel counts that leave a ragged panel or vector (the weight gradient's GEMMs below and
  // from 32 input channels), one-pixel outputs, batches split unevenly over chunks, rows wider
  // than a vector of tiles. The tolerance is relative to the largest output: F(4x4,3x3)'s
  // transforms multiply by up to 8 and round more (conv_winograd.h).
  const ConvCase cases[] = {
      {{2, 16, 8, 8}, {16, 16, 3, 3}, 1, 1, 1, 1, true},
      {{3, 16, 7, 9}, {24, 16, 3, 3}, 1, 1, 1, 1, false},
      {{5, 32, 6, 5}, {16, 32, 3, 3}, 1, 0, 1, 1, true},
      {{2, 24, 5, 5}, {16, 24, 3, 3}, 1, 2, 1, 1, true},
      {{7, 16, 4, 4}, {32, 16, 3, 3}, 1, 1, 1, 1, false},
      {{3, 16, 1, 1}, {16, 16, 3, 3}, 1, 1, 1, 1, true},
      {{9, 16, 16, 16}, {16, 16, 3, 3}, 1, 1, 1, 1, true},
      {{2, 17, 9, 6}, {19, 17, 3, 3}, 1, Size2{0, 2}, 1, 1, true},
      {{2, 3, 37, 35}, {5, 3, 3, 3}, 1, 1, 1, 1, true},
      {{2, 64, 11, 13}, {64, 64, 3, 3}, 1, 1, 1, 1, false},
      // the weight gradient's broadcast path (C >= 32): ragged panels of D, ragged column vectors
      {{3, 40, 9, 9}, {20, 40, 3, 3}, 1, 1, 1, 1, true},
      {{5, 100, 6, 6}, {36, 100, 3, 3}, 1, 1, 1, 1, false},
      {{1, 8, 70, 66}, {4, 8, 3, 3}, 1, 1, 1, 1, true},
      // rows packed several to a vector, the last tile row cropped (7 rows), one tile per row
      {{2, 16, 7, 8}, {16, 16, 3, 3}, 1, 1, 1, 1, true},
      {{3, 16, 5, 4}, {16, 16, 3, 3}, 1, 1, 1, 1, false},
  };
  Generator gen(23);
  for (const int64_t m : {2, 4}) {
    const double tolerance = m == 2 ? 1e-6 : 1e-5;
    for (const ConvCase& cc : cases) {
      Tensor x = randn(cc.x, {}, &gen), w = randn(cc.w, {}, &gen);
      Tensor b = cc.bias ? randn({cc.w[0]}, {}, &gen) : Tensor();
      const Conv2dParams p = conv2d_params(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
      INFO("F(", m, "x", m, ",3x3) x ", shape_str(cc.x), " w ", shape_str(cc.w), " padding ", cc.padding.h,
           "x", cc.padding.w);
      Tensor y = empty({p.N, p.K, p.P, p.Q});
      cpu::winograd_conv(p, y.data<float>(), x.data<float>(), w.data<float>(), false,
                         b.defined() ? b.data<float>() : nullptr, m);
      CHECK(max_relative_diff(values_of(y), reference_conv2d(x, w, b, p)) < tolerance);
      // The data gradient: the convolution of dy with the flipped weights, padding 2 - padding.
      Tensor dy = randn(y.shape(), {}, &gen), dx = empty(x.shape());
      Conv2dParams t = p;
      t.C = p.K, t.H = p.P, t.W = p.Q, t.K = p.C, t.P = p.H, t.Q = p.W, t.pad_h = 2 - p.pad_h,
      t.pad_w = 2 - p.pad_w;
      cpu::winograd_conv(t, dx.data<float>(), dy.data<float>(), w.data<float>(), true, nullptr, m);
      const ConvGrads want = reference_conv2d_grads(x, w, dy, p);
      CHECK(max_relative_diff(values_of(dx), want.dx) < tolerance);
      Tensor dw = empty(w.shape());
      cpu::winograd_weight_grad(p, dw.data<float>(), x.data<float>(), dy.data<float>(), m);
      CHECK(max_relative_diff(values_of(dw), want.dw) < tolerance);
    }
  }
}

TEST_CASE("conv2d takes Winograd for 3x3 stride-1 layers and its gradients match") {
  ::unsetenv("KINDLING_WINOGRAD");  // a suite run with KINDLING_WINOGRAD=0 still tests this path
  const ConvCase cases[] = {
      {{3, 16, 8, 8}, {16, 16, 3, 3}, 1, 1, 1, 1, true},
      {{2, 32, 12, 9}, {24, 32, 3, 3}, 1, 1, 1, 1, false},
  };
  Generator gen(24);
  for (const ConvCase& cc : cases) {
    Tensor x = randn(cc.x, {}, &gen).set_requires_grad(true),
           w = randn(cc.w, {}, &gen).set_requires_grad(true);
    Tensor b = cc.bias ? randn({cc.w[0]}, {}, &gen).set_requires_grad(true) : Tensor();
    const Conv2dParams p = conv2d_params(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    REQUIRE(cpu::winograd_applies(p));  // else this case tests the direct kernels
    Tensor y = conv2d(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    Tensor dy = randn(y.shape(), {}, &gen);
    y.backward(dy);
    const ConvGrads want = reference_conv2d_grads(x.detach(), w.detach(), dy, p);
    INFO("x ", shape_str(cc.x), " w ", shape_str(cc.w));
    CHECK(max_relative_diff(values_of(y), reference_conv2d(x.detach(), w.detach(),
                                                           b.defined() ? b.detach() : b, p)) < 1e-5);
    CHECK(max_relative_diff(values_of(x.grad()), want.dx) < 1e-5);
    CHECK(max_relative_diff(values_of(w.grad()), want.dw) < 1e-5);
  }
  // Finite differences through conv2d on a Winograd shape, all three gradients.
  std::vector<Tensor> inputs{randn({1, 16, 8, 8}, {}, &gen), randn({16, 16, 3, 3}, {}, &gen),
                             randn({16}, {}, &gen)};
  REQUIRE(cpu::winograd_applies(conv2d_params(inputs[0], inputs[1], inputs[2], 1, 1, 1, 1)));
  auto f = [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], 1, 1); };
  for (size_t which = 0; which < inputs.size(); ++which) {
    std::vector<Tensor> fresh;
    for (const Tensor& t : inputs) fresh.push_back(t.detach().clone().set_requires_grad(true));
    check_gradient(f, fresh, which);
  }
}

TEST_CASE("KINDLING_WINOGRAD picks the tile, and 0 sends a Winograd shape to the direct kernels") {
  ::unsetenv("KINDLING_WINOGRAD");
  Tensor x = zeros({1, 16, 8, 8}), w = zeros({16, 16, 3, 3});
  const Conv2dParams p = conv2d_params(x, w, {}, 1, 1, 1, 1);
  const Conv2dParams large = conv2d_params(zeros({1, 16, 16, 16}), w, {}, 1, 1, 1, 1);
  using cpu::WinogradUse;
  CHECK(cpu::winograd_tile(large) == 2);  // the forward keeps F(2x2,3x3): conv_winograd.h says why
  CHECK(cpu::winograd_tile(large, WinogradUse::data_gradient) == 4);
  CHECK(cpu::winograd_tile(p, WinogradUse::data_gradient) == 2);
  CHECK(cpu::winograd_tile(p, WinogradUse::weight_gradient) == 4);
  ::setenv("KINDLING_WINOGRAD", "2", 1);
  CHECK(cpu::winograd_tile(large, WinogradUse::weight_gradient) == 2);
  ::setenv("KINDLING_WINOGRAD", "4", 1);
  CHECK(cpu::winograd_tile(p) == 4);
  ::setenv("KINDLING_WINOGRAD", "0", 1);
  CHECK_FALSE(cpu::winograd_applies(p));
  CHECK_FALSE(cpu::winograd_enabled());
  ::unsetenv("KINDLING_WINOGRAD");
  CHECK_FALSE(
      cpu::winograd_applies(conv2d_params(zeros({1, 8, 8, 8}), zeros({16, 8, 3, 3}), {}, 1, 1, 1, 1)));
  CHECK_FALSE(cpu::winograd_applies(conv2d_params(x, w, {}, 2, 1, 1, 1)));
  const Conv2dParams small = conv2d_params(zeros({1, 16, 4, 4}), w, {}, 1, 1, 1, 1);
  CHECK(cpu::winograd_tile(small, WinogradUse::data_gradient) == 2);
  CHECK(cpu::winograd_tile(small, WinogradUse::weight_gradient) == 2);
  CHECK_FALSE(cpu::winograd_applies(conv2d_params(zeros({1, 16, 3, 3}), w, {}, 1, 1, 1, 1)));  // 3x3 output
}

TEST_CASE("conv2d output sizes follow PyTorch's formula") {
  Tensor x = zeros({1, 2, 10, 7}), w = zeros({3, 2, 3, 2});
  const Conv2dParams p = conv2d_params(x, w, {}, Size2{3, 2}, Size2{1, 0}, Size2{2, 1}, 1);
  CHECK(p.P == (10 + 2 - 2 * 2 - 1) / 3 + 1);
  CHECK(p.Q == (7 - 1 - 1) / 2 + 1);
}

TEST_CASE("conv2d backward matches finite differences") {  // with the kernels conv2d picks
  Generator gen(2);
  for (const ConvCase& cc : kConvCases) {
    if (cc.x[0] * cc.x[1] * cc.x[2] * cc.x[3] > 400) continue;  // keep the walk short
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
  CHECK_THROWS_AS(conv2d(x, zeros({3, 2, 3, 3}), {}, 1, 0, 1, 2), ShapeError);  // K=3 not divisible
  CHECK_THROWS_AS(conv2d(x, zeros({2, 4, 7, 7})), ShapeError);                  // window too big
  CHECK_THROWS_AS(conv2d(x, zeros({2, 4, 3, 3}), zeros({3})), ShapeError);
  CHECK_THROWS_AS(conv2d(zeros({4, 5, 5}), zeros({2, 4, 3, 3})), ShapeError);
  CHECK_THROWS_AS(conv2d(x, zeros({2, 4, 3, 3}), {}, 0), ValueError);
}
