// Input makers for the op registry's cases (ops/*_cases.cpp): small CPU tensors drawn from the
// case's generator, kept away from the op's kinks, in contiguous and non-contiguous layouts.
// Every maker returns a leaf; `grad` sets requires_grad.
#pragma once
#include "core/rng.h"
#include "core/tensor.h"
#include "ops/registry.h"

#include <vector>

namespace kindling::cases {

// Uniform values in [low, high).
Tensor uniform(Generator& gen, const Shape& shape, double low = -1.0, double high = 1.0, bool grad = true);
// Uniform in [low, high), redrawing any value closer than `margin` to one of `kinks`.
Tensor avoiding(Generator& gen, const Shape& shape, const std::vector<double>& kinks, double low = -1.0,
                double high = 1.0, double margin = 0.05, bool grad = true);
// Distinct values 0.1 apart in random order, centred on 0: max/min/argmax have no ties.
Tensor distinct(Generator& gen, const Shape& shape, bool grad = true);
// t's elements in logical order, as kinks for avoiding().
std::vector<double> values_of(const Tensor& t);
// Whole numbers in [0, n) as f32 (comparisons with equal elements).
Tensor whole_numbers(Generator& gen, const Shape& shape, int64_t n);

// t's values in a non-contiguous layout: stored with the last two dims swapped, viewed back.
Tensor transposed(const Tensor& t);
// t's values viewed as every other element along `dim` of a buffer twice as long there.
Tensor every_other(const Tensor& t, int64_t dim = 0);

// A case whose output is compared but not differentiated (comparisons, argmax, one_hot).
OpCase forward_only(OpCase c);

}  // namespace kindling::cases
