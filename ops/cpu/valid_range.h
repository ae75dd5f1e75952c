// The bounds arithmetic shared by im2col/col2im and the phased lowering of a convolution: which
// output positions of one tap (or one stride phase) read a pixel inside the image, so the inner
// copy loops carry no bounds checks.
#pragma once
#include <algorithm>
#include <cstdint>

namespace kindling::cpu {

// Output indices i in [0, out) whose input position i*stride + offset lies in [0, extent).
struct ValidRange {
  int64_t lo, hi;
};
inline ValidRange valid_range(int64_t out, int64_t stride, int64_t offset, int64_t extent) {
  int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t hi = extent - offset <= 0 ? 0 : (extent - offset + stride - 1) / stride;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
  return {lo, hi};
}

}  // namespace kindling::cpu
