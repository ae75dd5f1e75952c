// Elementwise ops: arithmetic with NumPy broadcasting, unary maths, activations, comparisons and
// where. Each front door checks dtypes (f32), devices and broadcast shapes, allocates a contiguous
// output, makes one Backend call, and records its backward when an input requires grad.
//
// Contract for every op here unless it says otherwise:
//   requires: f32 operands on one device whose shapes broadcast (NumPy rules); any strides.
//   ensures:  a fresh contiguous f32 output of the broadcast shape; differentiable in every
//             tensor operand, with gradients summed back to each operand's shape (sum_to).
// Broadcasting failures throw ShapeError naming the op and both shapes; dtype and device
// mismatches throw DTypeError / DeviceError naming the op and the operands.
#pragma once
#include "core/tensor.h"

namespace kindling {

// ---- binary arithmetic ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor add(double a, const Tensor& b);
Tensor sub(const Tensor& a, double b);
Tensor sub(double a, const Tensor& b);
Tensor mul(const Tensor& a, double b);
Tensor mul(double a, const Tensor& b);
Tensor div(const Tensor& a, double b);  // computed as a * (1/b), as GPU frameworks do
Tensor div(double a, const Tensor& b);
// a^b elementwise; the gradient with respect to b needs a > 0 (it is b's log-derivative).
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
// Gradient at ties: half to each side, as PyTorch does.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// ---- unary ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);       // 1 / sqrt(x)
Tensor reciprocal(const Tensor& x);  // 1 / x
Tensor abs(const Tensor& x);         // gradient sign(x), 0 at 0
Tensor square(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor relu(const Tensor& x);  // gradient 0 at 0
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
// min(max(x, min_value), max_value); requires min_value <= max_value (ValueError otherwise).
// Gradient 1 inside [min_value, max_value], 0 outside.
Tensor clamp(const Tensor& x, double min_value, double max_value);

// ---- selection ----
// out = cond != 0 ? a : b, all three broadcast together. cond is not differentiated; a non-f32
// cond (u8, i64) is converted first.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// ---- comparisons: not differentiable; f32 output of 1 and 0. i64 or u8 operands are converted
// to f32 first (exact for integers below 2^24, e.g. labels and argmax indices). ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

// ---- operators ----
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }
inline Tensor operator+(double a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(double a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(double a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace kindling
