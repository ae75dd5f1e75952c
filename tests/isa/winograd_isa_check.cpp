// The Winograd convolution and its GEMM tiles as another instruction set compiles them: this file
// is built with ops/cpu/{conv_winograd,winograd_transforms,conv_gemm,transpose}.cpp at
// -march=haswell (AVX2 + FMA, 8 lanes) and at -march=x86-64 (no SIMD: the plain loops and
// cblas), whatever -march=native picks for the rest of the build, and checks both tiles, forward,
// data gradient and weight gradient, against the convolution summed directly in double. The
// project's machines change CPU; a path this machine does not compile would first break on
// another. Prints one line per case; exits 1 on any case over its tolerance.
#include "ops/cpu/conv_winograd.h"
#include "ops/cpu/simd.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using namespace kindling;

namespace {

struct Case {
  int64_t N, C, H, W, K, pad_h, pad_w;
};

// out[n,k,p,q] = sum over c,r,s of in[n,c,p-pad+r,q-pad+s] * w(k,c,r,s), in double.
template <typename Weight>
std::vector<double> direct(const Conv2dParams& p, const std::vector<float>& in, Weight w) {
  std::vector<double> out(size_t(p.N * p.K * p.P * p.Q), 0.0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t i = 0; i < p.P; ++i)
        for (int64_t j = 0; j < p.Q; ++j) {
          double sum = 0;
          for (int64_t c = 0; c < p.C; ++c)
            for (int r = 0; r < 3; ++r)
              for (int s = 0; s < 3; ++s) {
                const int64_t h = i - p.pad_h + r, x = j - p.pad_w + s;
                if (h >= 0 && h < p.H && x >= 0 && x < p.W)
                  sum += double(in[size_t(((n * p.C + c) * p.H + h) * p.W + x)]) * w(k, c, r, s);
              }
          out[size_t(((n * p.K + k) * p.P + i) * p.Q + j)] = sum;
        }
  return out;
}

double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  return worst / scale;
}

}  // namespace

int main() {
#ifdef KINDLING_SIMD
  std::printf("compiled with %d-bit vectors\n", KINDLING_SIMD);
#else
  std::printf("compiled without SIMD\n");
#endif
  const Case cases[] = {{2, 16, 8, 8, 16, 1, 1}, {3, 16, 7, 9, 24, 1, 1},   {5, 32, 6, 5, 16, 0, 0},
                        {2, 24, 5, 5, 16, 2, 2}, {2, 16, 16, 16, 16, 1, 1}, {2, 17, 9, 6, 19, 0, 2},
                        {2, 16, 7, 8, 16, 1, 1}, {3, 16, 5, 4, 16, 1, 1},   {1, 16, 33, 31, 16, 1, 1},
                        {3, 40, 9, 9, 20, 1, 1}};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  int failures = 0;
  for (const int64_t m : {2, 4})
    for (const Case& c : cases) {
      Conv2dParams p{c.N, c.C, c.H, c.W, c.K, 3, 3, c.H + 2 * c.pad_h - 2, c.W + 2 * c.pad_w - 2};
      p.pad_h = c.pad_h, p.pad_w = c.pad_w;
      std::vector<float> x(size_t(p.N * p.C * p.H * p.W)), w(size_t(p.K * p.C * 9)), bias(size_t(p.K));
      std::vector<float> dy(size_t(p.N * p.K * p.P * p.Q));
      for (std::vector<float>* v : {&x, &w, &bias, &dy})
        for (float& e : *v) e = normal(rng);
      auto weight = [&](int64_t k, int64_t ch, int r, int s) {
        return w[size_t(((k * p.C + ch) * 3 + r) * 3 + s)];
      };
      // Forward, with the bias.
      std::vector<float> y(dy.size());
      cpu::winograd_conv(p, y.data(), x.data(), w.data(), false, bias.data(), m);
      std::vector<double> y_want = direct(p, x, weight);
      for (size_t i = 0; i < y_want.size(); ++i)
        y_want[i] += bias[size_t(i / size_t(p.P * p.Q) % size_t(p.K))];
      // Data gradient: dy convolved with the flipped weights, padding 2 - padding.
      Conv2dParams t = p;
      t.C = p.K, t.H = p.P, t.W = p.Q, t.K = p.C, t.P = p.H, t.Q = p.W, t.pad_h = 2 - p.pad_h,
      t.pad_w = 2 - p.pad_w;
      std::vector<float> dx(x.size());
      cpu::winograd_conv(t, dx.data(), dy.data(), w.data(), true, nullptr, m);
      const std::vector<double> dx_want =
          direct(t, dy, [&](int64_t ch, int64_t k, int r, int s) { return weight(k, ch, 2 - r, 2 - s); });
      // Weight gradient: dw[k,c,r,s] = sum over n,p,q of dy[n,k,p,q] x[n,c,p-pad+r,q-pad+s].
      std::vector<float> dw(w.size());
      cpu::winograd_weight_grad(p, dw.data(), x.data(), dy.data(), m);
      std::vector<double> dw_want(w.size(), 0.0);
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t k = 0; k < p.K; ++k)
          for (int64_t ch = 0; ch < p.C; ++ch)
            for (int r = 0; r < 3; ++r)
              for (int s = 0; s < 3; ++s)
                for (int64_t i = 0; i < p.P; ++i)
                  for (int64_t j = 0; j < p.Q; ++j) {
                    const int64_t h = i - p.pad_h + r, col = j - p.pad_w + s;
                    if (h < 0 || h >= p.H || col < 0 || col >= p.W) continue;
                    dw_want[size_t(((k * p.C + ch) * 3 + r) * 3 + s)] +=
                        double(dy[size_t(((n * p.K + k) * p.P + i) * p.Q + j)]) *
                        x[size_t(((n * p.C + ch) * p.H + h) * p.W + col)];
                  }
      const double tolerance = m == 2 ? 1e-6 : 1e-5;
      const double errors[3] = {relative_error(y, y_want), relative_error(dx, dx_want),
                                relative_error(dw, dw_want)};
      const bool ok = errors[0] < tolerance && errors[1] < tolerance && errors[2] < tolerance;
      failures += !ok;
      std::printf(
          "F(%ldx%ld,3x3) x [%ld,%ld,%ld,%ld] K %ld pad %ld,%ld: forward %.1e, data %.1e, weight %.1e%s\n",
          long(m), long(m), long(p.N), long(p.C), long(p.H), long(p.W), long(p.K), long(p.pad_h),
          long(p.pad_w), errors[0], errors[1], errors[2], ok ? "" : "  OVER THE TOLERANCE");
    }
  return failures == 0 ? 0 : 1;
}
