// Matrix transpose between strided row-major buffers, in register blocks with AVX-512 or AVX2 (a
// plain loop elsewhere). The convolution's weight gradient uses it to lay the image out
// channels-last and to pack dy.
#pragma once
#include <cstdint>

namespace kindling::cpu {

// dst[j*dst_stride + i] = src[i*src_stride + j] for i < rows, j < cols.
void transpose(const float* src, int64_t rows, int64_t cols, int64_t src_stride, float* dst,
               int64_t dst_stride);

}  // namespace kindling::cpu
