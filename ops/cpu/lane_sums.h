// Sums of floats accumulated in double, over one or many contiguous runs. Written with GCC/Clang
// vector types, kVectors accumulators of the widest double vector the build has registers for
// (8 doubles with AVX-512, 4 with AVX, 2 with SSE2): GCC does not vectorise a double reduction
// of floats on its own without -ffast-math, and scalar adds would make batch norm compute-bound.
// A vector wider than the registers (the 8-double one in an AVX2 build) is no better: GCC keeps
// it on the stack between iterations, and batch norm's forward ran at a third of its AVX-512
// speed. The accumulators carry across runs (a channel's N planes) and are reduced once, in a
// fixed order, so a given input always gives the same sum in a given build.
#pragma once
#include <immintrin.h>
#include <cstdint>

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

typedef double f64v __attribute__((vector_size(kDoubleLanes * 8)));

// Vectors go by reference, never by value: a 64-byte vector argument or return value would have
// a different ABI with and without AVX-512 (and GCC warns about it in portable builds). The
// conversion is the intrinsic's single vcvtps2pd: GCC 12 lowers __builtin_convertvector of these
// widths to two half-width conversions and a shuffle (AVX-512, AVX) or to scalar cvtss2sd pairs
// (SSE2). float to double is exact either way.
inline void widen(const float* p, f64v& out) {
#if defined(__AVX512F__)
  // All lanes, as _mm512_cvtps_pd, which GCC 12 flags with a false -Wmaybe-uninitialized.
  out = _mm512_maskz_cvtps_pd(0xFF, _mm256_loadu_ps(p));
#elif defined(__AVX__)
  out = _mm256_cvtps_pd(_mm_loadu_ps(p));
#else
  out = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#endif
}

// kSums sums of terms of kInputs float runs, each in kVectors accumulators of f64v plus a scalar
// tail. Terms{}(u, acc) adds one step's terms to acc[0..kSums) from the widened inputs
// u[0..kInputs); it is called with f64v for the vector loop and with double for the tail, so
// both add the same terms.
template <int kInputs, int kSums, typename Terms>
struct LaneSums {
  f64v lanes[kVectors][kSums] = {};
  double tail[kSums] = {};

  void add(const float* const (&in)[kInputs], int64_t n) {
    f64v acc[kVectors][kSums];  // a local copy, so the loop keeps the accumulators in registers
    for (int j = 0; j < kVectors; ++j)
      for (int k = 0; k < kSums; ++k) acc[j][k] = lanes[j][k];
    const int64_t vector_end = n - n % kStepFloats;
    for (int64_t i = 0; i < vector_end; i += kStepFloats) {
#pragma GCC unroll 4
      for (int j = 0; j < kVectors; ++j) {
        f64v u[kInputs];
        for (int r = 0; r < kInputs; ++r) widen(in[r] + i + j * kDoubleLanes, u[r]);
        Terms{}(u, acc[j]);
      }
    }
    for (int j = 0; j < kVectors; ++j)
      for (int k = 0; k < kSums; ++k) lanes[j][k] = acc[j][k];
    for (int64_t i = vector_end; i < n; ++i) {
      double u[kInputs];
      for (int r = 0; r < kInputs; ++r) u[r] = in[r][i];
      Terms{}(u, tail);
    }
  }

  // Sum k: acc[0] + acc[1] + ... lane by lane, its lanes added in order, then the tail. A fixed
  // order, so the result does not depend on how the runs were split into multiples of the step.
  double total(int k) const {
    f64v v = lanes[0][k];
    for (int j = 1; j < kVectors; ++j) v += lanes[j][k];
    double sum = 0.0;
    for (int j = 0; j < kDoubleLanes; ++j) sum += v[j];
    return sum + tail[k];
  }
};

struct SumTerms {
  template <typename V>
  void operator()(const V* u, V* acc) const {
    acc[0] += u[0];
  }
};
struct MomentTerms {  // x, x²
  template <typename V>
  void operator()(const V* u, V* acc) const {
    acc[0] += u[0], acc[1] += u[0] * u[0];
  }
};
struct SumAndDotTerms {  // a, a*b
  template <typename V>
  void operator()(const V* u, V* acc) const {
    acc[0] += u[0], acc[1] += u[0] * u[1];
  }
};

// sum x and sum x², over every run added.
struct MomentSums : LaneSums<1, 2, MomentTerms> {
  void add(const float* x, int64_t n) { LaneSums::add({x}, n); }
  double sum() const { return total(0); }
  double sum_squares() const { return total(1); }
};

// sum a and sum a*b, over every pair of runs added.
struct SumAndDot : LaneSums<2, 2, SumAndDotTerms> {
  void add(const float* a, const float* b, int64_t n) { LaneSums::add({a, b}, n); }
  double sum() const { return total(0); }
  double dot() const { return total(1); }
};

// sum_i x[i] of one run.
inline double sum_f64(const float* x, int64_t n) {
  LaneSums<1, 1, SumTerms> sums;
  sums.add({x}, n);
  return sums.total(0);
}

// sum_i x[i] and sum_i x[i]^2 of one run, added to *sum and *sum_squares.
inline void add_sum_and_squares_f64(const float* x, int64_t n, double* sum, double* sum_squares) {
  MomentSums sums;
  sums.add(x, n);
  *sum += sums.sum();
  *sum_squares += sums.sum_squares();
}

}  // namespace kindling::cpu
