// Sums of floats accumulated in double, over one or many contiguous runs. Written with GCC/Clang
// vector types (8 doubles per vector, two vectors in flight): GCC does not vectorise a double
// reduction of floats on its own without -ffast-math, and scalar adds would make batch norm
// compute-bound. The accumulators carry across runs (a channel's N planes) and are reduced once,
// in a fixed order, so a given input always gives the same sum.
#pragma once
#include <cstdint>
#include <cstring>

namespace kindling::cpu {

typedef float f32x8 __attribute__((vector_size(32)));
typedef double f64x8 __attribute__((vector_size(64)));

// Vectors go by reference, never by value: a 64-byte vector argument or return value would have
// a different ABI with and without AVX-512 (and GCC warns about it in portable builds).
inline void widen(const float* p, f64x8& out) {
  f32x8 v;
  std::memcpy(&v, p, sizeof(v));
  out = __builtin_convertvector(v, f64x8);
}

inline double horizontal_sum(const f64x8& v) {
  double total = 0.0;
  for (int j = 0; j < 8; ++j) total += v[j];
  return total;
}

// sum x and sum x², over every run added.
struct MomentSums {
  f64x8 s0 = {}, s1 = {}, q0 = {}, q1 = {};
  double s_tail = 0.0, q_tail = 0.0;
  void add(const float* x, int64_t n) {
    f64x8 a0 = s0, a1 = s1, b0 = q0, b1 = q1;  // locals, so the loop keeps them in registers
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      f64x8 u, v;
      widen(x + i, u), widen(x + i + 8, v);
      a0 += u, a1 += v;
      b0 += u * u, b1 += v * v;
    }
    s0 = a0, s1 = a1, q0 = b0, q1 = b1;
    for (; i < n; ++i) {
      const double v = x[i];
      s_tail += v, q_tail += v * v;
    }
  }
  double sum() const { return horizontal_sum(s0 + s1) + s_tail; }
  double sum_squares() const { return horizontal_sum(q0 + q1) + q_tail; }
};

// sum a and sum a*b, over every pair of runs added.
struct SumAndDot {
  f64x8 s0 = {}, s1 = {}, d0 = {}, d1 = {};
  double s_tail = 0.0, d_tail = 0.0;
  void add(const float* a, const float* b, int64_t n) {
    f64x8 t0 = s0, t1 = s1, e0 = d0, e1 = d1;  // locals, so the loop keeps them in registers
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      f64x8 a0, a1, b0, b1;
      widen(a + i, a0), widen(a + i + 8, a1), widen(b + i, b0), widen(b + i + 8, b1);
      t0 += a0, t1 += a1;
      e0 += a0 * b0, e1 += a1 * b1;
    }
    s0 = t0, s1 = t1, d0 = e0, d1 = e1;
    for (; i < n; ++i) {
      s_tail += a[i];
      d_tail += double(a[i]) * double(b[i]);
    }
  }
  double sum() const { return horizontal_sum(s0 + s1) + s_tail; }
  double dot() const { return horizontal_sum(d0 + d1) + d_tail; }
};

// sum_i x[i] of one run.
inline double sum_f64(const float* x, int64_t n) {
  f64x8 s0 = {}, s1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    f64x8 u, v;
    widen(x + i, u), widen(x + i + 8, v);
    s0 += u, s1 += v;
  }
  double total = horizontal_sum(s0 + s1);
  for (; i < n; ++i) total += double(x[i]);
  return total;
}

// sum_i x[i] and sum_i x[i]^2 of one run, added to *sum and *sum_squares.
inline void add_sum_and_squares_f64(const float* x, int64_t n, double* sum, double* sum_squares) {
  MomentSums sums;
  sums.add(x, n);
  *sum += sums.sum();
  *sum_squares += sums.sum_squares();
}

// sum_i a[i] and sum_i a[i]*b[i] of one pair of runs, added to *sum_a and *dot.
inline void add_sum_and_dot_f64(const float* a, const float* b, int64_t n, double* sum_a, double* dot) {
  SumAndDot sums;
  sums.add(a, b, n);
  *sum_a += sums.sum();
  *dot += sums.dot();
}

}  // namespace kindling::cpu
