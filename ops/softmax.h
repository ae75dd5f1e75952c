// Softmax and log-softmax over one dim (numerically stable: the row maximum is subtracted first),
// and one_hot.
#pragma once
#include "core/tensor.h"

namespace kindling {

// Requires: x f32, any shape with at least one dim, any strides; dim in [-ndim, ndim).
// Ensures: a result of x's shape, softmax_j = exp(x_j - m) / sum_k exp(x_k - m) with m the max
// along dim (log_softmax_j = x_j - m - log sum_k exp(x_k - m)); differentiable.
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// Requires: labels i64 [N] with every value in [0, num_classes) (ValueError naming the row and the
// value otherwise); num_classes >= 1.
// Ensures: f32 [N, num_classes] on labels' device with a 1 at (n, labels[n]) and 0 elsewhere.
// Not differentiable.
Tensor one_hot(const Tensor& labels, int64_t num_classes);

}  // namespace kindling
