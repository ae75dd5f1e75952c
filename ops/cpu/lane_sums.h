// Sums of floats accumulated in double, over one or many contiguous runs. Written with GCC/Clang
// vector types, kVectors accumulators of the widest double vector the build has registers for
// (8 doubles with AVX-512, 4 with AVX, 2 with SSE2): GCC does not vectorise a double reduction
// of floats on its own without -ffast-math, and scalar adds would make batch norm compute-bound.
// A vector wider than the registers (the 8-double one in an AVX2 build) is no better: GCC keeps
// it on the stack between iterations, and batch norm's forward ran at a third of its AVX-512
// speed. The accumulators carry across runs (a channel's N planes) and are reduced once, in a
// fixed order, so a given input always gives the same sum in a given build.
#pragma once
#include <cstdint>
#include <cstring>

namespace kindling::cpu {

#if defined(__AVX512F__)
constexpr int kDoubleLanes = 8;
#elif defined(__AVX__)
constexpr int kDoubleLanes = 4;
#else
constexpr int kDoubleLanes = 2;
#endif
// Accumulators per sum: two 8-double vectors (16 floats a step), four of 4 or of 2 doubles.
constexpr int kVectors = kDoubleLanes == 8 ? 2 : 4;
constexpr int kStepFloats = kDoubleLanes * kVectors;  // floats per step of the vector loops

typedef float f32v __attribute__((vector_size(kDoubleLanes * 4)));
typedef double f64v __attribute__((vector_size(kDoubleLanes * 8)));

// Vectors go by reference, never by value: a 64-byte vector argument or return value would have
// a different ABI with and without AVX-512 (and GCC warns about it in portable builds).
inline void widen(const float* p, f64v& out) {
  f32v v;
  std::memcpy(&v, p, sizeof(v));
  out = __builtin_convertvector(v, f64v);
}

// The lanes of acc[0] + acc[1] + ... summed in lane order.
inline double horizontal_sum(const f64v* acc) {
  f64v v = acc[0];
  for (int j = 1; j < kVectors; ++j) v += acc[j];
  double total = 0.0;
  for (int j = 0; j < kDoubleLanes; ++j) total += v[j];
  return total;
}

// sum x and sum x², over every run added.
struct MomentSums {
  f64v s[kVectors] = {}, q[kVectors] = {};
  double s_tail = 0.0, q_tail = 0.0;
  void add(const float* x, int64_t n) {
    f64v a[kVectors], b[kVectors];  // locals, so the loop keeps them in registers
    for (int j = 0; j < kVectors; ++j) a[j] = s[j], b[j] = q[j];
    const int64_t vector_end = n - n % kStepFloats;
    for (int64_t i = 0; i < vector_end; i += kStepFloats) {
#pragma GCC unroll 4
      for (int j = 0; j < kVectors; ++j) {
        f64v u;
        widen(x + i + j * kDoubleLanes, u);
        a[j] += u;
        b[j] += u * u;
      }
    }
    for (int j = 0; j < kVectors; ++j) s[j] = a[j], q[j] = b[j];
    for (int64_t i = vector_end; i < n; ++i) {
      const double v = x[i];
      s_tail += v, q_tail += v * v;
    }
  }
  double sum() const { return horizontal_sum(s) + s_tail; }
  double sum_squares() const { return horizontal_sum(q) + q_tail; }
};

// sum a and sum a*b, over every pair of runs added.
struct SumAndDot {
  f64v s[kVectors] = {}, d[kVectors] = {};
  double s_tail = 0.0, d_tail = 0.0;
  void add(const float* a, const float* b, int64_t n) {
    f64v t[kVectors], e[kVectors];  // locals, so the loop keeps them in registers
    for (int j = 0; j < kVectors; ++j) t[j] = s[j], e[j] = d[j];
    const int64_t vector_end = n - n % kStepFloats;
    for (int64_t i = 0; i < vector_end; i += kStepFloats) {
#pragma GCC unroll 4
      for (int j = 0; j < kVectors; ++j) {
        f64v u, v;
        widen(a + i + j * kDoubleLanes, u), widen(b + i + j * kDoubleLanes, v);
        t[j] += u;
        e[j] += u * v;
      }
    }
    for (int j = 0; j < kVectors; ++j) s[j] = t[j], d[j] = e[j];
    for (int64_t i = vector_end; i < n; ++i) {
      s_tail += a[i];
      d_tail += double(a[i]) * double(b[i]);
    }
  }
  double sum() const { return horizontal_sum(s) + s_tail; }
  double dot() const { return horizontal_sum(d) + d_tail; }
};

// sum_i x[i] of one run.
inline double sum_f64(const float* x, int64_t n) {
  f64v acc[kVectors] = {};
  const int64_t vector_end = n - n % kStepFloats;
  for (int64_t i = 0; i < vector_end; i += kStepFloats) {
#pragma GCC unroll 4
    for (int j = 0; j < kVectors; ++j) {
      f64v u;
      widen(x + i + j * kDoubleLanes, u);
      acc[j] += u;
    }
  }
  double total = horizontal_sum(acc);
  for (int64_t i = vector_end; i < n; ++i) total += double(x[i]);
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
