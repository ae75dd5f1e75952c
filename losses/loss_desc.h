// LossDesc: which loss a kernel runs and its hyperparameters, as plain data that a CUDA kernel can
// take by value. The per-row maths of every loss lives in the small headers beside this one
// (row_weight.h, label_smoothing.h, min_ent.h, squentropy.h, square.h, ngl.h) and is run by one
// generic CPU kernel (losses/cpu/loss.cpp) and one generic CUDA kernel (losses/cuda/loss.cu), both
// through losses/loss_rows.h. The spec for all of it is docs/losses.md.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KINDLING_HD __host__ __device__
#else
#define KINDLING_HD
#endif

namespace kindling {

// Every loss, once, in the order of docs/losses.md: X(kind, row-maths struct). The enum, the names
// and the count below and the kernels' dispatch (visit_loss in losses/loss_rows.h) are generated
// from this list; the registry (losses/registry.cpp) describes each kind for users.
// clang-format off
#define KINDLING_LOSS_KINDS(X)                    \
  X(ce, CeRow)                                    \
  X(label_smoothing, LabelSmoothingRow)           \
  X(lace, LaceRow)                                \
  X(expectation, ExpectationRow)                  \
  X(ce_expectation_mix, CeExpectationMixRow)      \
  X(min_ent, MinEntRow)                           \
  X(mix_ent, MixEntRow)                           \
  X(squentropy, SquentropyRow)                    \
  X(square, SquareRow)                            \
  X(ngl, NglRow)                                  \
  X(focal, FocalRow)                              \
  X(poly1, Poly1Row)
// clang-format on

#define KINDLING_LOSS_ENUM(kind, Row) kind,
enum class LossKind : int32_t { KINDLING_LOSS_KINDS(KINDLING_LOSS_ENUM) };
#undef KINDLING_LOSS_ENUM

#define KINDLING_LOSS_ONE(kind, Row) +1
inline constexpr int kNumLossKinds = 0 KINDLING_LOSS_KINDS(KINDLING_LOSS_ONE);
#undef KINDLING_LOSS_ONE
inline constexpr int kMaxLossParams = 4;

// The registry name of a kind ("ce", "label_smoothing", ...), for messages.
inline const char* loss_kind_name(LossKind kind) {
#define KINDLING_LOSS_NAME(kind, Row) #kind,
  constexpr const char* names[kNumLossKinds] = {KINDLING_LOSS_KINDS(KINDLING_LOSS_NAME)};
#undef KINDLING_LOSS_NAME
  const int index = static_cast<int>(kind);
  return index >= 0 && index < kNumLossKinds ? names[index] : "unknown";
}

// Hyperparameters as the kernels use them, already resolved by the front door (losses/loss.h):
// bases folded into coefficients, the mix schedule turned into (alpha, beta), square's defaults
// chosen for the class count. Each loss header says what its slots hold.
// How the row losses become the op's output: their mean (the default), their sum, or the [N] rows.
enum class Reduction : int32_t { mean, sum, none };

struct LossDesc {
  LossKind kind = LossKind::ce;
  float params[kMaxLossParams] = {};
  Reduction reduction = Reduction::mean;  // the kernels reduce the rows themselves
};

// ---- scalar maths for float and double, callable from host and device code ----
// Overloads instead of std:: so that device code gets the CUDA intrinsics' float versions and the
// double instantiation (the tests' precise reference) stays double throughout.
// exp of a float on the host: Cephes' expf (x = n ln 2 + r, |r| <= ln 2 / 2, a degree-6
// polynomial in r, times 2^n built from its bits), branch-free, so that the CPU kernel's loops over
// it vectorize without -ffast-math; relative error about 1e-7, like expf. Exactly 0 below -87 (no
// denormals), and capped at e^88 above 88 (losses only take exp of values <= 2.41).
inline float exp_poly(float x) {
  const float clamped = !(x >= -87.0f) ? -87.0f : x > 88.0f ? 88.0f : x;  // NaN -> -87
  // n = round(x / ln 2) by the 1.5 * 2^23 trick: std::floor would not vectorize.
  const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (clamped - n * 0.693359375f) + n * 2.12194440e-4f;
  float poly = 1.9875691500e-4f;
  poly = poly * r + 1.3981999507e-3f;
  poly = poly * r + 8.3334519073e-3f;
  poly = poly * r + 4.1665795894e-2f;
  poly = poly * r + 1.6666665459e-1f;
  poly = poly * r + 5.0000001201e-1f;
  const float result = (poly * r * r + r + 1.0f) * std::bit_cast<float>((int32_t(n) + 127) << 23);
  return x >= -87.0f ? result : x != x ? x : 0.0f;
}
// ln of a positive normal float on the host: Cephes' logf (x = 2^n f with f in [sqrt(1/2),
// sqrt(2)), a degree-9 polynomial in f - 1), branch-free so that it vectorizes across rows; relative
// error about 1e-7, like logf. Only for the row sums S in [1, C] that the short-row driver takes the
// log of: zero, negative, subnormal, infinite and NaN inputs give garbage.
inline float log_poly(float x) {
  const int32_t bits = std::bit_cast<int32_t>(x);
  float n = float(((bits >> 23) & 0xff) - 126);
  float f = std::bit_cast<float>((bits & 0x007fffff) | 0x3f000000);  // in [0.5, 1)
  const bool low = f < 0.707106781186547524f;
  n = low ? n - 1.0f : n;
  f = (low ? f + f : f) - 1.0f;
  const float f2 = f * f;
  float poly = 7.0376836292e-2f;
  poly = poly * f - 1.1514610310e-1f;
  poly = poly * f + 1.1676998740e-1f;
  poly = poly * f - 1.2420140846e-1f;
  poly = poly * f + 1.4249322787e-1f;
  poly = poly * f - 1.6668057665e-1f;
  poly = poly * f + 2.0000714765e-1f;
  poly = poly * f - 2.4999993993e-1f;
  poly = poly * f + 3.3333331174e-1f;
  const float tail = poly * f * f2 - 2.12194440e-4f * n - 0.5f * f2;
  return (f + tail) + 0.693359375f * n;
}
KINDLING_HD inline float k_exp(float x) {
#if defined(__CUDA_ARCH__)
  return ::expf(x);
#else
  return exp_poly(x);
#endif
}
KINDLING_HD inline double k_exp(double x) { return ::exp(x); }
KINDLING_HD inline float k_expm1(float x) { return ::expm1f(x); }
KINDLING_HD inline double k_expm1(double x) { return ::expm1(x); }
KINDLING_HD inline float k_log(float x) { return ::logf(x); }
KINDLING_HD inline double k_log(double x) { return ::log(x); }
KINDLING_HD inline float k_log1p(float x) { return ::log1pf(x); }
KINDLING_HD inline double k_log1p(double x) { return ::log1p(x); }
KINDLING_HD inline float k_pow(float x, float y) { return ::powf(x, y); }
KINDLING_HD inline double k_pow(double x, double y) { return ::pow(x, y); }
// x - x is 0 for finite x and NaN for ±Inf and NaN; no <cmath> classification needed on device.
template <typename T>
KINDLING_HD inline bool k_isfinite(T x) {
  return x - x == T(0);
}

// ---- the pieces of one row that every loss is written in ----
// A row is z [C] with label y. The generic driver (loss_rows.h) makes up to four passes over it:
//   1. m = max_j z_j                                          (and the finiteness check)
//   2. S = sum_j exp(z_j - m), lse = m + ln S; zsum = sum_j z_term(z_j, j == y)
//   3. psum = sum_j p_terms(lp_j, p_j, j == y)                 (only losses that need it)
//   4. dl/dz_j = p_coef * p_j + y_coef * [j == y] + extra(z_j, lp_j, p_j, j == y, p_terms_j)
// Each loss supplies the terms and `finish`, which turns the row sums into the value and the
// gradient coefficients. Losses say which passes they need with the static flags.
template <typename T>
struct RowSums {
  T s0 = 0, s1 = 0;
  KINDLING_HD RowSums& operator+=(const RowSums& other) {
    s0 += other.s0;
    s1 += other.s1;
    return *this;
  }
};
template <typename T>
struct RowStats {
  T C;              // class count
  T z_y;            // the true class's logit
  T lse;            // log-sum-exp of the row (0 when the loss needs no softmax)
  T lp_y;           // z_y - lse
  T q;              // p_y
  T one_minus_q;    // 1 - p_y, computed without cancelling (losses/row_weight.h)
  T zsum;           // pass 2's loss-specific sum
  RowSums<T> psum;  // pass 3's loss-specific sums
};
template <typename T>
struct RowCoef {
  T value = 0;   // the row's loss
  T p_coef = 0;  // coefficient of p_j in dl/dz_j
  T y_coef = 0;  // added to dl/dz_y
  T c0 = 0;      // a constant the loss's extra() may use
};

// Class j of a row as pass 4 sees it.
template <typename T>
struct RowElem {
  T z, lp, p;  // logit, log-probability, probability (lp = p = 0 without a softmax)
  bool is_y;
  RowSums<T> terms;  // the loss's p_terms at j, for losses that use them (saves recomputing)
};

// Defaults for the hooks a loss leaves out. Loss structs derive from this and hide what they use.
struct LossRowDefaults {
  static constexpr bool uses_softmax = true;  // pass 2 computes lse
  static constexpr bool uses_zsum = false;    // pass 2 calls z_term
  static constexpr bool uses_psum = false;    // pass 3 runs
  static constexpr bool uses_extra = false;   // pass 4 calls extra
  template <typename T>
  KINDLING_HD static T z_term(const LossDesc&, T, bool) {
    return T(0);
  }
  template <typename T>
  KINDLING_HD static RowSums<T> p_terms(const LossDesc&, T, T, bool) {
    return {};
  }
  template <typename T>
  KINDLING_HD static T extra(const LossDesc&, const RowCoef<T>&, T, const RowElem<T>&) {
    return T(0);
  }
};

}  // namespace kindling
