// Shape ops that are free functions. The view methods (reshape, view, permute, transpose, slice,
// narrow, select, expand, squeeze, unsqueeze, flatten) are declared on Tensor in core/tensor.h and
// defined, with their backward, in ops/shape.cpp.
#pragma once
#include "core/tensor.h"

#include <vector>

namespace kindling {

// Requires: a non-empty list of tensors with one dtype and device, equal shapes except along dim.
// Ensures: a fresh contiguous tensor joining them along dim; differentiable (f32) in every input.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);

// Requires: a non-empty list of tensors with one shape, dtype and device; dim in [-(n+1), n].
// Ensures: a fresh tensor with a new dim of size tensors.size() at dim; differentiable.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);

// The reverse of broadcasting: sums t over the leading dims it has beyond `shape` and over every
// dim where `shape` has 1 and t does not. Requires `shape` to broadcast to t's shape (ShapeError
// naming both otherwise). Returns t itself when the shapes are equal; differentiable.
Tensor sum_to(const Tensor& t, const Shape& shape);

}  // namespace kindling
