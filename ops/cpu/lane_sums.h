// Sums over one contiguous run of floats, accumulated in double. Written with GCC/Clang vector
// types (8 doubles per vector, two vectors in flight): GCC does not vectorise a double reduction
// of floats on its own without -ffast-math, and scalar adds would make batch norm compute-bound.
// The lanes are combined in a fixed order, so a given input always gives the same sum.
#pragma once
#include <cstdint>
#include <cstring>

namespace kindling::cpu {

typedef float f32x8 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));

inline f64x8 load_f64x8(const float* p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof(v));
  return __builtin_convertvector(v, f64x8);
}

inline double horizontal_sum(f64x8 v) {
  double total = 0.0;
  for (int j = 0; j < 8; ++j) total += v[j];
  return total;
}

// sum_i x[i]
inline double sum_f64(const float* x, int64_t n) {
  f64x8 s0 = {}, s1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 += load_f64x8(x + i);
    s1 += load_f64x8(x + i + 8);
  }
  double total = horizontal_sum(s0 + s1);
  for (; i < n; ++i) total += double(x[i]);
  return total;
}

// sum_i x[i] and sum_i x[i]^2, added to *sum and *sum_squares.
inline void add_sum_and_squares_f64(const float* x, int64_t n, double* sum, double* sum_squares) {
  f64x8 s0 = {}, s1 = {}, q0 = {}, q1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f64x8 a = load_f64x8(x + i), b = load_f64x8(x + i + 8);
    s0 += a, s1 += b;
    q0 += a * a, q1 += b * b;
  }
  double s = horizontal_sum(s0 + s1), q = horizontal_sum(q0 + q1);
  for (; i < n; ++i) {
    const double v = x[i];
    s += v, q += v * v;
  }
  *sum += s;
  *sum_squares += q;
}

// sum_i a[i] and sum_i a[i]*b[i], added to *sum_a and *dot.
inline void add_sum_and_dot_f64(const float* a, const float* b, int64_t n, double* sum_a, double* dot) {
  f64x8 s0 = {}, s1 = {}, d0 = {}, d1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f64x8 a0 = load_f64x8(a + i), a1 = load_f64x8(a + i + 8);
    s0 += a0, s1 += a1;
    d0 += a0 * load_f64x8(b + i), d1 += a1 * load_f64x8(b + i + 8);
  }
  double s = horizontal_sum(s0 + s1), d = horizontal_sum(d0 + d1);
  for (; i < n; ++i) {
    s += a[i];
    d += double(a[i]) * double(b[i]);
  }
  *sum_a += s;
  *dot += d;
}

}  // namespace kindling::cpu
