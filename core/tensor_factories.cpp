// The tensor factories declared in core/tensor.h: fresh storage (empty, full, zeros, ones and
// their _like forms), values built on the host and copied once to the device (arange, rand,
// randn), and from_vector.
#include "core/tensor.h"

#include "core/backend.h"
#include "core/rng.h"

#include <cmath>
#include <cstring>

namespace kindling {

Tensor empty(const Shape& shape, TensorOptions options) {
  for (int64_t d : shape)
    KINDLING_CHECK(d >= 0, ShapeError, "empty: negative dimension in shape {}", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage =
      std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(options.dtype), options.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = options.dtype;
  Tensor t(std::move(impl));
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), TensorOptions{}.with_dtype(t.dtype()).with_device(t.device()));
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  const bool requires_grad = options.requires_grad;
  options.requires_grad = false;
  Tensor t = empty(shape, options);
  if (t.numel() > 0) backend(options.device).fill(t, value);
  return requires_grad ? t.set_requires_grad(true) : t;
}

Tensor zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }
Tensor zeros_like(const Tensor& t) {
  return zeros(t.shape(), TensorOptions{}.with_dtype(t.dtype()).with_device(t.device()));
}
Tensor ones_like(const Tensor& t) {
  return ones(t.shape(), TensorOptions{}.with_dtype(t.dtype()).with_device(t.device()));
}

namespace {
// Builds values on the host as doubles, then converts once into the requested dtype and device.
template <typename Fill>
Tensor host_generated(const Shape& shape, TensorOptions options, Fill fill) {
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(fill(i));
  Tensor t = from_vector(values, shape, TensorOptions{}.with_device(options.device));
  if (options.dtype != DType::f32) t = t.to(options.dtype);
  return options.requires_grad ? t.set_requires_grad(true) : t;
}
}  // namespace

Tensor arange(int64_t end, TensorOptions options) { return arange(0.0, double(end), 1.0, options); }

Tensor arange(double start, double end, double step, TensorOptions options) {
  KINDLING_CHECK(step != 0.0, ValueError, "arange: step must be non-zero");
  const int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  if (options.dtype == DType::i64) {
    std::vector<int64_t> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) values[size_t(i)] = int64_t(start + double(i) * step);
    return from_vector(values, {n}, options);
  }
  return host_generated({n}, options, [&](size_t i) { return start + double(i) * step; });
}

Tensor rand(const Shape& shape, TensorOptions options, Generator* generator, double low, double high) {
  Generator& gen = generator ? *generator : default_generator();
  return host_generated(shape, options, [&](size_t) { return low + (high - low) * gen.uniform(); });
}

Tensor randn(const Shape& shape, TensorOptions options, Generator* generator, double mean, double std) {
  Generator& gen = generator ? *generator : default_generator();
  return host_generated(shape, options, [&](size_t) { return mean + std * gen.normal(); });
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions options) {
  KINDLING_CHECK(int64_t(values.size()) == shape_numel(shape), ShapeError,
                 "from_vector: {} values do not fill shape {} ({} elements)", values.size(), shape_str(shape),
                 shape_numel(shape));
  const bool requires_grad = options.requires_grad;
  Tensor host = empty(shape, TensorOptions{}.with_dtype(dtype_of<T>()));
  if (!values.empty()) std::memcpy(host.data_ptr(), values.data(), values.size() * sizeof(T));
  Tensor t = host.to(options.device);
  return requires_grad ? t.set_requires_grad(true) : t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template Tensor from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, TensorOptions);

}  // namespace kindling
