#include "ops/cpu/peak.h"

#include <cstddef>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define KINDLING_PEAK_X86 1
#endif

namespace kindling::cpu {
namespace {

// The update keeps each accumulator near b / (1 - a) = 1: no overflow, no subnormals (which some
// cores handle slowly), however many rounds run.
constexpr float kScale = 0.999f, kStep = 1e-3f;

// acc[i] = acc[i] * a + b, i < 8 chains of plain floats: the fallback where neither AVX-512 nor
// AVX2+FMA exists (the compiler contracts it to an FMA where the target has one).
constexpr int kScalarChains = 8;
float fp32_fma_scalar(int64_t rounds) {
  float acc[kScalarChains];
  for (int i = 0; i < kScalarChains; ++i) acc[i] = float(i);
  for (int64_t r = 0; r < rounds; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < kScalarChains; ++i) acc[i] = acc[i] * kScale + kStep;
  float total = 0;
  for (float a : acc) total += a;
  return total;
}

#ifdef KINDLING_PEAK_X86
// The start and the end of every kernel below, for any of their vector types (GCC's vector
// extensions): chain i starts at i in every lane; the result sums every lane of every chain. Inlined,
// so that the chains stay in registers.
template <typename V, size_t chains>
[[gnu::always_inline]] inline void start_chains(V (&acc)[chains]) {
  for (size_t i = 0; i < chains; ++i) acc[i] = V{} + float(i);
}
template <typename V, size_t chains>
[[gnu::always_inline]] inline float sum_chains(const V (&acc)[chains]) {
  V total = acc[0];
  for (size_t i = 1; i < chains; ++i) total += acc[i];
  float sum = 0;
  for (size_t lane = 0; lane < sizeof(V) / sizeof(float); ++lane) sum += total[lane];
  return sum;
}

// 16 chains of 16 floats: AVX-512 has 32 registers, and 16 chains cover a 4-cycle FMA latency on
// two 512-bit pipes with room to spare.
constexpr int kAvx512Chains = 16;
__attribute__((target("avx512f"))) float fp32_fma_avx512(int64_t rounds) {
  const __m512 a = _mm512_set1_ps(kScale), b = _mm512_set1_ps(kStep);
  __m512 acc[kAvx512Chains];
  start_chains(acc);
  for (int64_t r = 0; r < rounds; ++r)
#pragma GCC unroll 16
    for (int i = 0; i < kAvx512Chains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  return sum_chains(acc);
}

// 12 chains of 8 floats: with a and b, 14 of AVX2's 16 registers; 12 cover a 5-cycle FMA latency on
// two pipes.
constexpr int kAvx2Chains = 12;
__attribute__((target("avx2,fma"))) float fp32_fma_avx2(int64_t rounds) {
  const __m256 a = _mm256_set1_ps(kScale), b = _mm256_set1_ps(kStep);
  __m256 acc[kAvx2Chains];
  start_chains(acc);
  for (int64_t r = 0; r < rounds; ++r)
#pragma GCC unroll 12
    for (int i = 0; i < kAvx2Chains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  return sum_chains(acc);
}

// acc[i] += a · b over 32 bf16 pairs into 16 floats. a = 1 and b ≈ 0.001, so an accumulator grows
// by about 0.002 a round: still finite and normal after 10^12 rounds.
__attribute__((target("avx512f,avx512bf16"))) float bf16_dot_avx512(int64_t rounds) {
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(kStep), _mm512_set1_ps(kStep));
  __m512 acc[kAvx512Chains];
  start_chains(acc);
  for (int64_t r = 0; r < rounds; ++r)
#pragma GCC unroll 16
    for (int i = 0; i < kAvx512Chains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  return sum_chains(acc);
}
#endif

}  // namespace

std::vector<PeakKernel> peak_kernels() {
  std::vector<PeakKernel> kernels;
#ifdef KINDLING_PEAK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    kernels.push_back({"fp32_fma", "avx512", kAvx512Chains, 2.0 * 16 * kAvx512Chains, fp32_fma_avx512});
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    kernels.push_back({"fp32_fma", "avx2", kAvx2Chains, 2.0 * 8 * kAvx2Chains, fp32_fma_avx2});
#endif
  if (kernels.empty())
    kernels.push_back({"fp32_fma", "scalar", kScalarChains, 2.0 * kScalarChains, fp32_fma_scalar});
#ifdef KINDLING_PEAK_X86
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"))
    kernels.push_back({"bf16_dot", "avx512_bf16", kAvx512Chains, 2.0 * 32 * kAvx512Chains, bf16_dot_avx512});
#endif
  return kernels;
}

}  // namespace kindling::cpu
