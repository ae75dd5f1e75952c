// Register-only kernels that run a CPU core's arithmetic units flat out, for `kindling bench --peak`:
// independent accumulator chains, each updated by one vector instruction per round, with no loads or
// stores in the loop, so that the time is the instructions' throughput alone. The widest instruction
// set the CPU supports is chosen at run time (GCC target attributes), not the build's -march: the
// figure is the machine's limit, whatever the build was compiled for.
//   fp32_fma: acc[i] = acc[i] * a + b on 16 (AVX-512) or 8 (AVX2+FMA) floats; 2 FLOPs per lane.
//   bf16_dot: acc[i] += sum over pairs of a[2j] * b[2j] + a[2j+1] * b[2j+1] (vdpbf16ps, AVX512-BF16),
//             32 bf16 pairs into 16 floats per instruction; 2 FLOPs per pair.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kindling::cpu {

struct PeakKernel {
  std::string name;  // "fp32_fma", "bf16_dot"
  std::string isa;   // "avx512", "avx2", "avx512_bf16", "scalar"
  int chains = 0;    // independent accumulators: enough to cover the latency of every pipe
  double flops_per_round = 0;
  // Runs `rounds` rounds on the calling thread; the result depends on every accumulator, so that no
  // round can be dropped by the compiler.
  float (*run)(int64_t rounds) = nullptr;
};

// fp32_fma on the widest of AVX-512, AVX2+FMA or plain floats, then bf16_dot where the CPU has
// AVX512-BF16.
std::vector<PeakKernel> peak_kernels();

}  // namespace kindling::cpu
