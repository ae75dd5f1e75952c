// 2-D pooling over NCHW, as torch.nn.functional's max_pool2d, avg_pool2d and adaptive_avg_pool2d
// (floor mode: windows that would start past the padded input are not produced).
#pragma once
#include "core/backend.h"
#include "core/tensor.h"
#include "ops/size2.h"

#include <optional>

namespace kindling {

// Requires: input f32 [N,C,H,W]; kernel, stride >= 1 (stride defaults to the kernel); 0 <= padding
// <= kernel/2 (PyTorch's rule); the window fits the padded input.
// Ensures: y [N,C,P,Q], P = (H + 2*pad_h - R)/stride_h + 1, likewise Q;
//   y[n,c,p,q] = max over the window (padding never wins); ties go to the first element in
//   row-major order. NaN propagates: a window holding NaNs outputs NaN and its winner is the last
//   NaN in row-major order (PyTorch's CPU and CUDA rule), the same on every backend. Backward sends
//   each gradient to the element that won.
Tensor max_pool2d(const Tensor& input, Size2 kernel, std::optional<Size2> stride = std::nullopt,
                  Size2 padding = 0);

// As max_pool2d, with y = mean over the window; the divisor is R*S clipped to the padded input
// when count_include_pad (PyTorch's default), else the number of in-bounds elements.
Tensor avg_pool2d(const Tensor& input, Size2 kernel, std::optional<Size2> stride = std::nullopt,
                  Size2 padding = 0, bool count_include_pad = true);

// Requires: input f32 [N,C,H,W]; output_size >= 1 each.
// Ensures: y [N,C,oh,ow]; y[n,c,i,j] = mean of x[n,c, h0:h1, w0:w1] with h0 = floor(i*H/oh),
//   h1 = ceil((i+1)*H/oh), likewise w. (1, 1) is global average pooling. Windows of equal size
//   (H % oh == 0 and W % ow == 0) run the avg_pool2d kernel; others a GEMM with the averaging
//   matrix.
Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size);

// The kernel geometry max_pool2d / avg_pool2d use; ShapeError or ValueError when it does not fit.
Pool2dParams pool2d_params(const char* op, const Tensor& input, Size2 kernel, Size2 stride, Size2 padding,
                           bool count_include_pad = true);

}  // namespace kindling
