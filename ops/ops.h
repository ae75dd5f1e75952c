// Every op in one include: elementwise maths and comparisons, reductions, shape functions,
// matmul/linear, softmax/one_hot, and the CNN ops (conv2d, pooling, batch norm, dropout). The
// view methods (reshape, permute, slice, ...) are Tensor methods declared in core/tensor.h.
#pragma once
#include "core/autograd.h"
#include "core/tensor.h"
#include "ops/batchnorm.h"
#include "ops/conv.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/shape.h"
#include "ops/softmax.h"
