#include "core/precision.h"

#include "core/error.h"

#include <atomic>

namespace kindling {
namespace {
std::atomic<Precision> current{Precision::fp32};
}

Precision parse_precision(std::string_view name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw ValueError(fmt::format("precision '{}': expected fp32 or bf16", name));
}

std::string precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

void set_gemm_precision(Precision precision) {
  KINDLING_CHECK(precision != Precision::bf16 || cpu_has_avx512_bf16(), DeviceError,
                 "precision bf16 needs a CPU with AVX512-BF16 (vdpbf16ps), and this CPU has none; "
                 "use --precision fp32");
  current = precision;
}

Precision gemm_precision() { return current; }

}  // namespace kindling
