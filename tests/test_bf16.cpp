// --precision bf16 on the CPU: the rounding, the bf16 GEMM kernels, the convolutions and matrix
// products that use them, and the error on a CPU without AVX512-BF16. The oracle is the fp32
// definition (the reference kernels, summed in double) applied to operands rounded to bf16 first:
// the kernels' products of bf16 are exact, so they may differ from it only by fp32's rounding of
// the sums, bounded by (terms + 2)·2⁻²⁴·Σ|a·b| for every output.
#include "core/precision.h"
#include "core/rng.h"
#include "ops/conv.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/reference/reference_backend.h"
#include "ops/matmul.h"
#include "tests/test_op_util.h"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

using namespace kindling;
using namespace kindling::test;
using cpu::to_bf16;

namespace {

// Sets the precision for one scope.
struct ScopedPrecision {
  explicit ScopedPrecision(Precision p) { set_gemm_precision(p); }
  ~ScopedPrecision() { set_gemm_precision(Precision::fp32); }
};

bool skip_without_bf16() {
  if (cpu_has_avx512_bf16()) return false;
  MESSAGE("skipped: this CPU has no AVX512-BF16");
  return true;
}

Tensor rounded(const Tensor& t) {
  std::vector<float> v = values_of(t);
  for (float& x : v) x = cpu::round_to_bf16(x);
  return from_vector(v, t.shape());
}

Tensor magnitudes(const Tensor& t) {
  std::vector<float> v = values_of(t);
  for (float& x : v) x = std::fabs(x);
  return from_vector(v, t.shape());
}

// Every got[i] within (terms + 2)·2⁻²⁴·scale[i] of want[i] (scale: Σ|a·b| of that output).
void check_within_sum_rounding(const std::vector<float>& got, const std::vector<float>& want,
                               const std::vector<float>& scale, int64_t terms) {
  REQUIRE(got.size() == want.size());
  REQUIRE(got.size() == scale.size());
  const double unit = std::ldexp(1.0, -24) * double(terms + 2);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - double(want[i])) <= unit * double(scale[i]) + 1e-30)) ++bad;
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("bf16 rounding: nearest, ties to even, zeros, denormals, inf and NaN") {
  auto bits = [](uint32_t u) { return to_bf16(std::bit_cast<float>(u)); };
  CHECK(bits(0x3f800000u) == 0x3f80);                    // 1
  CHECK(bits(0x3f808000u) == 0x3f80);                    // 1 + 2⁻⁸: a tie, to the even 1
  CHECK(bits(0x3f818000u) == 0x3f82);                    // a tie, to the even 0x3f82
  CHECK(bits(0x3f808001u) == 0x3f81);                    // past the tie: up
  CHECK(bits(0xbf807fffu) == 0xbf80);                    // below the tie: down, sign kept
  CHECK(bits(0x00000001u) == 0x0000);                    // a denormal: +0
  CHECK(bits(0x80400000u) == 0x8000);                    // a denormal: -0
  CHECK(bits(0x7f7fffffu) == 0x7f80);                    // the largest float rounds to inf
  CHECK(bits(0xff800000u) == 0xff80);                    // -inf
  CHECK(std::isnan(cpu::from_bf16(bits(0x7f800001u))));  // a signalling NaN stays a NaN
  CHECK(cpu::round_to_bf16(3.14159265f) == 3.140625f);
}

TEST_CASE("bf16 GEMM kernels equal the fp32 product of bf16-rounded operands") {
  if (skip_without_bf16()) return;
  Generator gen(21);
  struct Case {
    int64_t M, N, K;
  };
  // Tiles' edges (8 rows, 48 columns, 4×4 dot products), odd depths, depth blocks past 256.
  for (const Case c : {Case{1, 1, 1}, Case{8, 48, 2}, Case{13, 50, 7}, Case{16, 1024, 144}, Case{70, 33, 601},
                       Case{5, 97, 64}, Case{3, 4, 33}}) {
    INFO("M ", c.M, " N ", c.N, " K ", c.K);
    const std::vector<float> a = values_of(randn({c.M, c.K}, {}, &gen));
    const std::vector<float> b = values_of(randn({c.K, c.N}, {}, &gen));
    const std::vector<float> bt = values_of(from_vector(b, {c.K, c.N}).t().contiguous());  // [N, K]
    std::vector<float> want(size_t(c.M * c.N)), scale(want.size());
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double sum = 0.0, magnitude = 0.0;
        for (int64_t k = 0; k < c.K; ++k) {
          const double term = double(cpu::round_to_bf16(a[size_t(i * c.K + k)])) *
                              double(cpu::round_to_bf16(b[size_t(k * c.N + j)]));
          sum += term, magnitude += std::fabs(term);
        }
        want[size_t(i * c.N + j)] = float(sum), scale[size_t(i * c.N + j)] = float(magnitude);
      }
    std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());  // not read
    cpu::gemm_bf16_nn(cpu::PackedBf16({a.data(), c.K, 1}, c.M, c.K), c.N, b.data(), c.N, got.data(), c.N,
                      false);
    check_within_sum_rounding(got, want, scale, c.K);
    std::vector<float> nt(want.size(), std::numeric_limits<float>::quiet_NaN());
    cpu::gemm_bf16_nt(c.M, c.N, c.K, a.data(), c.K, bt.data(), c.K, nt.data(), c.N, false);
    check_within_sum_rounding(nt, want, scale, c.K);
    // accumulate adds to C; A read transposed through its strides gives the same product
    std::vector<float> twice = got;
    const std::vector<float> at = values_of(from_vector(a, {c.M, c.K}).t().contiguous());  // [K, M]
    cpu::gemm_bf16_nn(cpu::PackedBf16({at.data(), 1, c.M}, c.M, c.K), c.N, b.data(), c.N, twice.data(), c.N,
                      true);
    for (float& w : want) w *= 2.0f;
    for (float& s : scale) s *= 2.0f;
    check_within_sum_rounding(twice, want, scale, c.K + 1);
  }
}

TEST_CASE("bf16 convolutions equal the reference convolution of bf16-rounded operands") {
  if (skip_without_bf16()) return;
  const ScopedPrecision bf16(Precision::bf16);
  struct Case {
    Shape x, w;
    Size2 stride, padding, dilation;
    int64_t groups;
  };
  const Case cases[] = {
      {{3, 16, 9, 7}, {8, 16, 3, 3}, 1, 1, 1, 1},              // stride 1 (Winograd's shapes in fp32)
      {{4, 16, 8, 8}, {16, 16, 3, 3}, 1, 1, 1, 1},             // the ResNet block's
      {{2, 3, 12, 12}, {16, 3, 3, 3}, 1, 1, 1, 1},             // the stem's odd depth 27
      {{3, 16, 8, 8}, {24, 16, 3, 3}, 2, 1, 1, 1},             // strided
      {{3, 32, 10, 11}, {8, 16, 3, 3}, Size2{2, 1}, 1, 1, 2},  // groups
      {{5, 16, 7, 9}, {8, 16, 3, 3}, Size2{1, 2}, Size2{2, 1}, Size2{2, 1}, 1},  // dilated
      {{3, 32, 5, 6}, {24, 32, 1, 1}, 1, 0, 1, 1},                               // 1×1
  };
  Generator gen(5);
  Backend& ref = reference_cpu_backend();
  for (const Case& cc : cases) {
    INFO("x ", shape_str(cc.x), " w ", shape_str(cc.w), " groups ", cc.groups);
    Tensor x = randn(cc.x, {}, &gen).set_requires_grad(true),
           w = randn(cc.w, {}, &gen).set_requires_grad(true);
    Tensor b = randn({cc.w[0]}, {}, &gen).set_requires_grad(true);
    const Conv2dParams p = conv2d_params(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    Tensor y = conv2d(x, w, b, cc.stride, cc.padding, cc.dilation, cc.groups);
    Tensor dy = randn(y.shape(), {}, &gen);
    y.backward(dy);
    const Tensor xr = rounded(x.detach()), wr = rounded(w.detach()), dyr = rounded(dy);
    const Tensor xa = magnitudes(xr), wa = magnitudes(wr), dya = magnitudes(dyr);
    const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
    Tensor want = empty(y.shape()), scale = empty(y.shape()), ba = magnitudes(b.detach());
    ref.conv2d_fwd(p, want, xr, wr, b.detach());
    ref.conv2d_fwd(p, scale, xa, wa, ba);
    check_within_sum_rounding(values_of(y), values_of(want), values_of(scale), Cg * p.R * p.S + 1);
    Tensor dx = empty(cc.x), dx_scale = empty(cc.x);
    ref.conv2d_bwd_data(p, dx, dyr, wr);
    ref.conv2d_bwd_data(p, dx_scale, dya, wa);
    check_within_sum_rounding(values_of(x.grad()), values_of(dx), values_of(dx_scale), Kg * p.R * p.S);
    Tensor dw = empty(cc.w), dw_scale = empty(cc.w), db = empty({p.K}), db_scale = empty({p.K});
    ref.conv2d_bwd_weight(p, dw, db, xr, dyr);
    ref.conv2d_bwd_weight(p, dw_scale, db_scale, xa, dya);
    check_within_sum_rounding(values_of(w.grad()), values_of(dw), values_of(dw_scale), p.N * p.P * p.Q);
  }
}

TEST_CASE("bf16 matrix products: every transpose, alpha and beta, through autograd") {
  if (skip_without_bf16()) return;
  Generator gen(8);
  const Tensor a = randn({37, 29}, {}, &gen), b = randn({29, 53}, {}, &gen);
  const Tensor ar = rounded(a), br = rounded(b);
  const std::vector<float> want = values_of(matmul(ar, br)),
                           scale = values_of(matmul(magnitudes(ar), magnitudes(br)));
  const ScopedPrecision bf16(Precision::bf16);
  check_within_sum_rounding(values_of(matmul(a, b)), want, scale, 31);
  check_within_sum_rounding(values_of(matmul(a.t().contiguous().t(), b)), want, scale, 31);
  check_within_sum_rounding(values_of(matmul(a, b.t().contiguous().t())), want, scale, 31);
  check_within_sum_rounding(values_of(matmul(a.t().contiguous().t(), b.t().contiguous().t())), want, scale,
                            31);
  // alpha and beta: C = 0.5·A·B + 2·C through the backend
  std::vector<float> c(size_t(37 * 53), 1.0f), expected(c.size()), expected_scale(c.size());
  for (size_t i = 0; i < c.size(); ++i)
    expected[i] = 0.5f * want[i] + 2.0f, expected_scale[i] = 0.5f * scale[i] + 2.0f;
  const std::vector<float> av = values_of(a), bv = values_of(b);
  cpu_backend().gemm(false, false, 37, 53, 29, 0.5f, av.data(), 29, 0, bv.data(), 53, 0, 2.0f, c.data(), 53,
                     0, 1);
  check_within_sum_rounding(c, expected, expected_scale, 33);
}

TEST_CASE("precision: names, and bf16 refused on a CPU without AVX512-BF16") {
  CHECK(parse_precision("fp32") == Precision::fp32);
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK(precision_name(Precision::bf16) == "bf16");
  CHECK_THROWS_WITH_AS(parse_precision("fp16"), "precision 'fp16': expected fp32 or bf16", ValueError);
  if (cpu_has_avx512_bf16()) {
    set_gemm_precision(Precision::bf16);
    CHECK(gemm_precision() == Precision::bf16);
    set_gemm_precision(Precision::fp32);
  } else {
    CHECK_THROWS_WITH_AS(set_gemm_precision(Precision::bf16),
                         doctest::Contains("needs a CPU with AVX512-BF16"), DeviceError);
    CHECK(gemm_precision() == Precision::fp32);
  }
  CHECK(gemm_precision() == Precision::fp32);
}
