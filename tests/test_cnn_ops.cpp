// CNN ops on the CPU: conv2d against a direct loop and finite differences, pooling values, batch
// norm statistics and running-stat updates, dropout masks, and the fused optimizer kernels against
// the formulas in core/backend.h.
#include "core/autograd.h"
#include "core/backend.h"
#include "core/rng.h"
#include "ops/conv.h"

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

// The definition, one output at a time, in double.
std::vector<float> naive_conv2d(const std::vector<float>& x, const std::vector<float>& w,
                                const std::vector<float>& bias, const Conv2dParams& p) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  std::vector<float> y(size_t(p.N * p.K * p.P * p.Q));
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t oh = 0; oh < p.P; ++oh)
        for (int64_t ow = 0; ow < p.Q; ++ow) {
          const int64_t g = k / Kg;
          double acc = bias.empty() ? 0.0 : bias[size_t(k)];
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t ih = oh * p.stride_h - p.pad_h + r * p.dil_h;
                const int64_t iw = ow * p.stride_w - p.pad_w + s * p.dil_w;
                if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
                acc += double(x[size_t(((n * p.C + g * Cg + c) * p.H + ih) * p.W + iw)]) *
                       w[size_t(((k * Cg + c) * p.R + r) * p.S + s)];
              }
          y[size_t(((n * p.K + k) * p.P + oh) * p.Q + ow)] = float(acc);
        }
  return y;
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
};

}  // namespace

TEST_CASE("conv2d forward matches the direct definition") {
  Generator gen(1);
  for (const ConvCase& cc : kConvCases) {
    Tensor x = randn(cc.x, {}, &gen), w = randn(cc.w, {}, &gen);
    Tensor b = cc.bias ? randn({cc.w[0]}, {}, &gen) : Tensor();
    const Conv2dParams p = conv2d_params(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    Tensor y = conv2d(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    CHECK(y.shape() == Shape{p.N, p.K, p.P, p.Q});
    const std::vector<float> expected =
        naive_conv2d(values_of(x), values_of(w), cc.bias ? values_of(b) : std::vector<float>{}, p);
    INFO("x ", shape_str(cc.x), " w ", shape_str(cc.w), " groups ", cc.groups);
    CHECK(max_abs_diff(values_of(y), expected) < 1e-4);
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
