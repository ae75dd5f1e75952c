// --precision bf16 on the CPU: the rounding, the bf16 GEMM kernels, the convolutions and matrix
// products that use them, and the error on a CPU without AVX512-BF16. The oracle is the fp32
// definition (the reference kernels, summed in double) applied to operands rounded to bf16 first:
// the kernels' products of bf16 are exact, so they may differ from it only by fp32's rounding of
// the sums, bounded by (terms + 2)·2⁻²⁴·Σ|a·b| for every output.
#include "core/precision.h"
#include "core/rng.h"
#include "ops/conv.h"
#include "ops/cpu/conv_winograd.h"
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

// Every got[i] within bound·scale[i] + slack of want[i].
void check_within(const std::vector<float>& got, const std::vector<float>& want,
                  const std::vector<float>& scale, double bound, double slack = 0.0) {
  REQUIRE(got.size() == want.size());
  REQUIRE(got.size() == scale.size());
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(double(got[i]) - double(want[i])) <= bound * double(scale[i]) + slack)) ++bad;
  CHECK(bad == 0);
}

// Every got[i] within (terms + 2)·2⁻²⁴·scale[i] of want[i] (scale: Σ|a·b| of that output).
void check_within_sum_rounding(const std::vector<float>& got, const std::vector<float>& want,
                               const std::vector<float>& scale, int64_t terms) {
  check_within(got, want, scale, std::ldexp(1.0, -24) * double(terms + 2), 1e-30);
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
  // The direct kernels, which round the operands themselves; Winograd rounds its transforms (below).
  const ScopedEnv direct("KINDLING_WINOGRAD", "0");
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

namespace {

// conv2d_fwd of the reference kernels (sums in double).
Tensor reference_conv(const Conv2dParams& p, const Tensor& x, const Tensor& w) {
  Tensor y = empty({p.N, p.K, p.P, p.Q});
  reference_cpu_backend().conv2d_fwd(p, y, x, w, Tensor());
  return y;
}

// Σ_c (Σ_taps |w[k,c]|)·(Σ of |x[c]| over the 5×5 window of padded rows and columns o-pad-1 .. o-pad+3)
// for every output o of a stride-1 3×3 convolution with padding `pad`: the window holds the 4×4
// input tile of o's F(2×2, 3×3) tile, whichever of its rows and columns o is.
Tensor tile_scale(const Tensor& x, const Tensor& w, int64_t pad) {
  const Tensor w_abs = magnitudes(w);
  const int64_t K = w.size(0), C = w.size(1);
  std::vector<float> w5(size_t(K * C * 25));
  for (int64_t kc = 0; kc < K * C; ++kc) {
    float sum = 0.0f;
    for (int64_t tap = 0; tap < 9; ++tap) sum += w_abs.data<float>()[kc * 9 + tap];
    std::fill_n(w5.begin() + kc * 25, 25, sum);
  }
  const Tensor window = from_vector(w5, {K, C, 5, 5}), xa = magnitudes(x);
  return reference_conv(conv2d_params(xa, window, {}, 1, pad + 1, 1, 1), xa, window);
}

// ‖got − want‖ / ‖want‖.
double relative_rms_error(const Tensor& got, const Tensor& want) {
  const std::vector<float> g = values_of(got), v = values_of(want);
  double error = 0.0, norm = 0.0;
  for (size_t i = 0; i < g.size(); ++i)
    error += (double(g[i]) - v[i]) * (double(g[i]) - v[i]), norm += double(v[i]) * v[i];
  return std::sqrt(error / norm);
}

}  // namespace

// With bf16, Winograd's GEMMs take U = G g Gᵀ and V = Bᵀ d B rounded to bf16 (unit roundoff
// u = 2⁻⁸). F(2×2, 3×3)'s matrices bound every error: |U[ξ]| <= max|G_i·|·max|G_j·|·Σ|g| and
// |V[ξ]| <= Σ over the 4×4 tile of |d|, and Aᵀ's rows weight those maxima by 1 + ½ + ½ = 2 per
// axis, so |Δy| <= 4(2u + u²)·Σ_c Σ|g_c|·Σ_tile|d_c|, fp32's roundings (of order 2⁻²⁴ per term)
// inside the 1 + 2⁻⁶ margin. The weight gradient is the same with Gᵀ's column sums (2, 1, 2, so
// again 4) and the 2×2 tiles of dy. F(4×4, 3×3), whose matrices hold 4, 5 and 8, is not used:
// its bf16 error is 2.5–2.8e-2 of the outputs' norm against 3.8–4.1e-3 for F(2×2, 3×3) and
// 2.3–2.4e-3 for the direct bf16 kernels (ResNet-20's shapes, Gaussian data).
TEST_CASE("bf16 Winograd convolutions stay within bf16's rounding of F(2x2,3x3)'s transforms") {
  if (skip_without_bf16()) return;
  const ScopedPrecision bf16(Precision::bf16);
  ::unsetenv("KINDLING_WINOGRAD");  // a suite run with KINDLING_WINOGRAD=0 still tests this path
  const double u = std::ldexp(1.0, -8), bound = 4 * (2 * u + u * u) * (1 + std::ldexp(1.0, -6));
  struct Case {
    Shape x, w;
    int64_t pad;
  };
  const Case cases[] = {
      {{4, 16, 8, 8}, {16, 16, 3, 3}, 1},    // the ResNet block's
      {{2, 32, 16, 16}, {16, 32, 3, 3}, 1},  // the data gradient's F(4×4) plane in fp32
      {{3, 16, 9, 7}, {24, 16, 3, 3}, 1},    // odd planes: part tiles
      {{2, 16, 10, 11}, {16, 16, 3, 3}, 0},  // unpadded (the data gradient's padding 2)
      {{2, 17, 6, 6}, {19, 17, 3, 3}, 1},    // odd depths: a pair padded with zero
  };
  Generator gen(11);
  for (const Case& cc : cases) {
    INFO("x ", shape_str(cc.x), " w ", shape_str(cc.w), " padding ", cc.pad);
    Tensor x = randn(cc.x, {}, &gen).set_requires_grad(true),
           w = randn(cc.w, {}, &gen).set_requires_grad(true);
    const Conv2dParams p = conv2d_params(x, w, {}, 1, cc.pad, 1, 1);
    REQUIRE(cpu::winograd_tile(p) == 2);
    CHECK(cpu::winograd_tile(p, cpu::WinogradUse::data_gradient) == 2);
    CHECK(cpu::winograd_tile(p, cpu::WinogradUse::weight_gradient) == 2);
    Tensor y = conv2d(x, w, {}, 1, cc.pad);
    Tensor dy = randn(y.shape(), {}, &gen);
    y.backward(dy);
    const Tensor xd = x.detach(), wd = w.detach();
    // The exact results, and the direct bf16 kernels' (a different path: they must differ).
    const Tensor want = reference_conv(p, xd, wd);
    Tensor dx = empty(cc.x), dw = empty(cc.w);
    reference_cpu_backend().conv2d_bwd_data(p, dx, dy, wd);
    reference_cpu_backend().conv2d_bwd_weight(p, dw, Tensor(), xd, dy);
    {
      const ScopedEnv direct("KINDLING_WINOGRAD", "0");
      CHECK(max_abs_diff(values_of(conv2d(xd, wd, {}, 1, cc.pad)), values_of(y)) > 0.0);
    }
    // Forward, and the data gradient as the convolution of dy with the flipped weights.
    check_within(values_of(y), values_of(want), values_of(tile_scale(xd, wd, cc.pad)), bound);
    // (tile_scale needs only Σ|w[k,c]| per pair, which flipping the taps leaves as it is)
    check_within(values_of(x.grad()), values_of(dx),
                 values_of(tile_scale(dy, wd.transpose(0, 1).contiguous(), 2 - cc.pad)), bound);
    // Weight gradient: Σ over images and 2×2 output tiles of (Σ|dy| on the tile)·(Σ|x| on its 4×4
    // input tile), per (k, c).
    const std::vector<float> xa = values_of(magnitudes(xd)), dya = values_of(magnitudes(dy));
    const int64_t TH = (p.P + 1) / 2, TW = (p.Q + 1) / 2;
    std::vector<float> dw_scale(size_t(p.K * p.C * 9), 0.0f);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t ty = 0; ty < TH; ++ty)
        for (int64_t tx = 0; tx < TW; ++tx) {
          std::vector<double> x_tile(size_t(p.C), 0.0);
          for (int64_t c = 0; c < p.C; ++c)
            for (int64_t r = 2 * ty - cc.pad; r < 2 * ty - cc.pad + 4; ++r)
              for (int64_t q = 2 * tx - cc.pad; q < 2 * tx - cc.pad + 4; ++q)
                if (r >= 0 && r < p.H && q >= 0 && q < p.W)
                  x_tile[size_t(c)] += xa[size_t(((n * p.C + c) * p.H + r) * p.W + q)];
          for (int64_t k = 0; k < p.K; ++k) {
            double dy_tile = 0.0;
            for (int64_t r = 2 * ty; r < std::min(2 * ty + 2, p.P); ++r)
              for (int64_t q = 2 * tx; q < std::min(2 * tx + 2, p.Q); ++q)
                dy_tile += dya[size_t(((n * p.K + k) * p.P + r) * p.Q + q)];
            for (int64_t c = 0; c < p.C; ++c)
              for (int64_t tap = 0; tap < 9; ++tap)
                dw_scale[size_t((k * p.C + c) * 9 + tap)] += float(dy_tile * x_tile[size_t(c)]);
          }
        }
    check_within(values_of(w.grad()), values_of(dw), dw_scale, bound);
    // Bounds hold for any path; the errors' size says the products were bf16 and F(2×2, 3×3)'s.
    for (const auto& [got, exact] : {std::pair{y, want}, std::pair{x.grad(), dx}, std::pair{w.grad(), dw}}) {
      const double error = relative_rms_error(got, exact);
      CHECK(error > 1e-3);
      CHECK(error < 8e-3);
    }
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
