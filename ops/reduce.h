// Reductions: sum, mean, max, min (values, differentiable), argmax/argmin (i64 indices, not
// differentiable) and the sum of squares used for gradient-norm clipping.
//
// Requires: an f32 tensor, any strides, any device; dims in [-ndim, ndim), no dim twice (ShapeError
// naming the op and the shape otherwise). max/min/argmax/argmin refuse an empty reduction.
// Ensures: a fresh contiguous output whose shape is t's without the reduced dims, or with them as
// size 1 when keepdim. Sums and means accumulate in double on the CPU. Reducing over all dims
// gives a 0-dim tensor. Max/min gradients go to the maximal elements, split evenly between ties.
#pragma once
#include "core/tensor.h"

#include <vector>

namespace kindling {

Tensor sum(const Tensor& t);
Tensor sum(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor sum(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& t);  // an empty tensor's mean is NaN, as 0/0
Tensor mean(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& t, int64_t dim, bool keepdim = false);
// Sum of x² over every element, as a 0-dim tensor (gradient norms).
Tensor sum_squares(const Tensor& t);

Tensor max(const Tensor& t);
Tensor max(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& t);
Tensor min(const Tensor& t, int64_t dim, bool keepdim = false);

// i64 indices of the first maximal (minimal) element along dim; without a dim, into the flattened
// tensor.
Tensor argmax(const Tensor& t);
Tensor argmax(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& t);
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim = false);

}  // namespace kindling
