// The precision of the CPU's matrix products: convolutions, linear layers, matmul. fp32 by
// default; bf16 (`--precision bf16`) rounds each GEMM's operands to bfloat16 and sums the products
// in fp32 on AVX512-BF16's vdpbf16ps (ops/cpu/gemm_bf16.h). Everything else stays fp32: the
// tensors, the master weights the optimiser updates, BatchNorm's statistics, the losses. The
// setting is process-wide, like the thread count; the CUDA backend does not read it.
#pragma once
#include <string>
#include <string_view>

namespace kindling {

enum class Precision { fp32, bf16 };

// "fp32" or "bf16"; anything else is a ValueError naming the value.
Precision parse_precision(std::string_view name);
std::string precision_name(Precision precision);

// Whether this CPU runs vdpbf16ps (AVX512-BF16, with the AVX512-BW the packing uses).
bool cpu_has_avx512_bf16();

// Sets the precision; bf16 on a CPU without AVX512-BF16 is a DeviceError that says so.
void set_gemm_precision(Precision precision);
Precision gemm_precision();

}  // namespace kindling
