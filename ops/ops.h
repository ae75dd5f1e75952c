// Every op in one include: elementwise maths and comparisons, reductions, shape functions,
// matmul/linear, softmax/one_hot. The view methods (reshape, permute, slice, ...) are Tensor
// methods declared in core/tensor.h.
#pragma once
#include "core/autograd.h"
#include "core/tensor.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"
// The CNN ops (ops/conv.h, ops/pool.h, ops/batchnorm.h, ops/dropout.h) join this list when they land.
