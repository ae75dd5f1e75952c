// The double-precision lane sums of ops/cpu/lane_sums.h (batch norm's statistics, the reductions)
// as another instruction set compiles them: built at -march=haswell (4-double vectors) and at
// -march=x86-64 (2-double vectors), whatever -march=native picks for the rest of the build, and
// checked against sums taken in long double: runs of every length around the vector step, a
// channel's sums carried over many runs, and a run summed in 1024-float chunks equal, to the bit,
// to the same run summed whole (batch norm's fused backward relies on it). Prints one line per
// check; exits 1 on any failure.
#include "ops/cpu/lane_sums.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

using namespace kindling::cpu;

namespace {

int failures = 0;

void check(bool ok, const char* what, double found, double expected) {
  std::printf("%s %s: %.17g against %.17g\n", ok ? "ok  " : "FAIL", what, found, expected);
  if (!ok) ++failures;
}

bool close(double found, long double expected, long double scale) {
  return std::fabs(double(found - expected)) <= 1e-13 * double(scale);
}

}  // namespace

int main() {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.5f, 2.0f);
  std::vector<float> a(5000), b(5000);
  for (size_t i = 0; i < a.size(); ++i) a[i] = normal(gen), b[i] = normal(gen);
  std::printf("lane sums: %d doubles per vector, %d vectors, %d floats a step\n", kDoubleLanes, kVectors,
              kStepFloats);

  // Lengths around the step and the vector width, each summed alone.
  for (int64_t n : {0, 1, 7, 8, 15, 16, 17, 31, 33, 1000, 4999}) {
    long double s = 0, q = 0, d = 0, scale = 0;
    for (int64_t i = 0; i < n; ++i) {
      s += a[size_t(i)], q += (long double)a[size_t(i)] * a[size_t(i)];
      d += (long double)a[size_t(i)] * b[size_t(i)],
          scale += std::fabs(a[size_t(i)]) * (1 + std::fabs(a[size_t(i)]) + std::fabs(b[size_t(i)]));
    }
    MomentSums moments;
    moments.add(a.data(), n);
    SumAndDot sum_dot;
    sum_dot.add(a.data(), b.data(), n);
    char what[64];
    std::snprintf(what, sizeof what, "n=%ld sum", long(n));
    check(close(moments.sum(), s, scale) && close(sum_f64(a.data(), n), s, scale), what, moments.sum(),
          double(s));
    std::snprintf(what, sizeof what, "n=%ld sum of squares", long(n));
    check(close(moments.sum_squares(), q, scale), what, moments.sum_squares(), double(q));
    std::snprintf(what, sizeof what, "n=%ld sum and dot", long(n));
    check(close(sum_dot.sum(), s, scale) && close(sum_dot.dot(), d, scale), what, sum_dot.dot(), double(d));
  }

  // A channel's runs (planes of 49 floats, not a multiple of any step) carried in one accumulator.
  {
    long double s = 0, q = 0, scale = 0;
    MomentSums moments;
    for (int64_t run = 0; run < 100; ++run) {
      moments.add(a.data() + run * 49, 49);
      for (int64_t i = run * 49; i < (run + 1) * 49; ++i)
        s += a[size_t(i)], q += (long double)a[size_t(i)] * a[size_t(i)],
            scale += std::fabs(a[size_t(i)]) * (1 + std::fabs(a[size_t(i)]));
    }
    check(close(moments.sum(), s, scale) && close(moments.sum_squares(), q, scale),
          "100 runs of 49, sum and squares", moments.sum_squares(), double(q));
  }

  // 1024-float chunks of a 4096-float run give the bits of the whole run.
  {
    SumAndDot whole, chunked;
    whole.add(a.data(), b.data(), 4096);
    for (int64_t begin = 0; begin < 4096; begin += 1024)
      chunked.add(a.data() + begin, b.data() + begin, 1024);
    check(whole.sum() == chunked.sum() && whole.dot() == chunked.dot(), "chunks of 1024 equal the whole run",
          chunked.dot(), whole.dot());
  }
  return failures == 0 ? 0 : 1;
}
