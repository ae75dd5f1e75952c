// Checks shared by the op front doors. Every message names the op and describes the operands
// ("f32[2,3] on cpu"), so an error read in a log says what was called with what.
#pragma once
#include "core/tensor.h"

#include <initializer_list>

namespace kindling::detail {

inline void check_defined(const char* op, const Tensor& t, const char* what = "input") {
  KINDLING_CHECK(t.defined(), ValueError, "{}: {} is an undefined tensor", op, what);
}

// DTypeError unless t is f32 (the only dtype that carries maths and gradients).
inline void check_f32(const char* op, const Tensor& t, const char* what = "input") {
  check_defined(op, t, what);
  KINDLING_CHECK(t.dtype() == DType::f32, DTypeError, "{}: {} must be f32, got {}", op, what, t.describe());
}

// DeviceError unless every tensor lives on the device of the first.
inline void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors)
    KINDLING_CHECK(t->device() == first->device(), DeviceError,
                   "{}: operands are on different devices: {} and {}", op, first->describe(), t->describe());
}

inline TensorOptions options_of(const Tensor& t) {
  return TensorOptions{}.with_dtype(t.dtype()).with_device(t.device());
}
inline TensorOptions f32_on(Device device) { return TensorOptions{}.with_device(device); }

// A 0-dim f32 tensor holding `value` on t's device (the scalar side of Tensor ⊕ double).
inline Tensor scalar_like(double value, const Tensor& t) { return full({}, value, f32_on(t.device())); }

}  // namespace kindling::detail
