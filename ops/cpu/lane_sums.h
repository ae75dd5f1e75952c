// Sums over one contiguous run, accumulated in double. The partial sums sit in independent lanes so
// the compiler vectorises the loop without -ffast-math (a single running sum is a serial chain of
// dependent adds); the lanes are combined at the end, the same way on every call.
#pragma once
#include <cstdint>

namespace kindling::cpu {

constexpr int kLanes = 8;

// sum_i x[i]
inline double sum_f64(const float* x, int64_t n) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += double(x[i + j]);
  double total = 0.0;
  for (; i < n; ++i) total += double(x[i]);
  for (int j = 0; j < kLanes; ++j) total += lanes[j];
  return total;
}

// sum_i x[i] and sum_i x[i]^2, added to *sum and *sum_squares.
inline void add_sum_and_squares_f64(const float* x, int64_t n, double* sum, double* sum_squares) {
  double s[kLanes] = {}, q[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double v = x[i + j];
      s[j] += v;
      q[j] += v * v;
    }
  for (; i < n; ++i) {
    const double v = x[i];
    *sum += v;
    *sum_squares += v * v;
  }
  for (int j = 0; j < kLanes; ++j) *sum += s[j], *sum_squares += q[j];
}

// sum_i a[i] and sum_i a[i]*b[i], added to *sum_a and *dot.
inline void add_sum_and_dot_f64(const float* a, const float* b, int64_t n, double* sum_a, double* dot) {
  double s[kLanes] = {}, d[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const double va = a[i + j];
      s[j] += va;
      d[j] += va * double(b[i + j]);
    }
  for (; i < n; ++i) {
    *sum_a += a[i];
    *dot += double(a[i]) * double(b[i]);
  }
  for (int j = 0; j < kLanes; ++j) *sum_a += s[j], *dot += d[j];
}

}  // namespace kindling::cpu
