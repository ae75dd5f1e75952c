// Size2: a (height, width) pair for kernel sizes, strides, paddings and dilations of the 2-D window
// ops (conv, pooling). An integer converts to (n, n), so `conv2d(x, w, {}, 2, 1)` reads like
// PyTorch's `conv2d(x, w, None, 2, 1)`, and `{2, 1}` gives height 2, width 1.
#pragma once
#include <cstdint>

namespace kindling {

struct Size2 {
  int64_t h = 0, w = 0;
  Size2(int64_t both) : h(both), w(both) {}  // NOLINT: implicit on purpose, see above
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
};

// Output length of a sliding window: floor((in + 2*pad - dil*(k-1) - 1) / stride) + 1; may be <= 0
// when the window does not fit (callers check).
inline int64_t window_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                  int64_t dilation = 1) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

}  // namespace kindling
