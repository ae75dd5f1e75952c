// Checks and dispatch shared by the CPU and CUDA kernels, so both backends accept and refuse the
// same inputs with the same messages.
#pragma once
#include "core/tensor.h"

#include <initializer_list>

namespace kindling {

// Calls fn(T{}) with T the C++ type of `dtype` (f32, i64, u8); DTypeError naming op and backend
// for bf16, which no kernel takes yet.
template <typename Fn>
void dispatch_dtype(DType dtype, const char* op, const char* backend_name, Fn&& fn) {
  switch (dtype) {
    case DType::f32:
      fn(float{});
      return;
    case DType::i64:
      fn(int64_t{});
      return;
    case DType::u8:
      fn(uint8_t{});
      return;
    case DType::bf16:
      break;
  }
  throw DTypeError(
      fmt::format("{}: dtype {} is not supported on {} yet", op, dtype_name(dtype), backend_name));
}

// Row kernels (softmax): every tensor contiguous f32 [rows, C], all of one shape.
inline void check_rows(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = *tensors.begin();
  for (const Tensor* t : tensors)
    KINDLING_CHECK(
        t->dtype() == DType::f32 && t->dim() == 2 && t->is_contiguous() && t->shape() == first->shape(),
        ShapeError, "{}: expected contiguous f32 [rows, C] tensors of one shape, got {}", op, t->describe());
}

}  // namespace kindling
