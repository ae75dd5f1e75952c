// Tensor's methods (metadata, data access, copies between devices, autograd, in-place updates,
// printing) and the non-recording view helpers (as_strided, broadcast_view). The factories (empty,
// zeros, randn, from_vector, ...) live in core/tensor_factories.cpp, the differentiable views
// (reshape, permute, ...) in ops/shape.cpp.
#include "core/tensor.h"

#include "core/autograd.h"
#include "core/backend.h"

#include <sstream>

namespace kindling {

// ---- metadata ----
const Shape& Tensor::shape() const { return impl_->shape; }
const Shape& Tensor::strides() const { return impl_->strides; }
int64_t Tensor::dim() const { return int64_t(impl_->shape.size()); }
int64_t Tensor::size(int64_t d) const { return impl_->shape[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return shape_numel(impl_->shape); }
int64_t Tensor::offset() const { return impl_->offset; }
DType Tensor::dtype() const { return impl_->dtype; }
Device Tensor::device() const { return impl_->storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return impl_->storage; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (impl_->shape[d] == 1) continue;  // a size-1 dim's stride never matters
    if (impl_->strides[d] != expected) return false;
    expected *= impl_->shape[d];
  }
  return true;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return fmt::format("{}{} on {}", dtype_name(dtype()), shape_str(shape()), device().str());
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t extent = std::max<int64_t>(ndim, 1);
  KINDLING_CHECK(dim >= -extent && dim < extent, ShapeError,
                 "{}: dim {} is out of range for a tensor with {} dims", op, dim, ndim);
  return dim < 0 ? dim + extent : dim;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t stride = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    strides[d] = stride;
    stride *= std::max<int64_t>(shape[d], 1);
  }
  return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    KINDLING_CHECK(da == db || da == 1 || db == 1, ShapeError,
                   "{}: shapes {} and {} cannot be broadcast together (dim {}: {} vs {})", op, shape_str(a),
                   shape_str(b), i, da, db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor broadcast_view(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  KINDLING_CHECK(shape.size() >= size_t(t.dim()), ShapeError, "cannot broadcast {} to {}",
                 shape_str(t.shape()), shape_str(shape));
  const size_t lead = shape.size() - t.dim();
  Shape strides(shape.size(), 0);
  for (size_t i = 0; i < size_t(t.dim()); ++i) {
    const int64_t from = t.shape()[i], to = shape[lead + i];
    KINDLING_CHECK(from == to || from == 1, ShapeError, "cannot broadcast {} to {}", shape_str(t.shape()),
                   shape_str(shape));
    strides[lead + i] = from == to ? t.strides()[i] : 0;
  }
  return as_strided(t, shape, strides, t.offset());
}

Tensor as_strided(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  KINDLING_CHECK(shape.size() == strides.size(), ShapeError,
                 "as_strided: shape {} and strides {} differ in length", shape_str(shape),
                 shape_str(strides));
  int64_t last = offset;
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0)
      empty = true;
    else
      last += (shape[i] - 1) * strides[i];
  }
  const int64_t capacity = int64_t(base.storage()->nbytes() / dtype_size(base.dtype()));
  KINDLING_CHECK(empty || (offset >= 0 && last < capacity), ShapeError,
                 "as_strided: view {} with strides {} at offset {} exceeds storage of {} elements",
                 shape_str(shape), shape_str(strides), offset, capacity);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- data ----
void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * int64_t(dtype_size(dtype()));
}

template <typename T>
T* Tensor::data() const {
  KINDLING_CHECK(dtype() == dtype_of<T>(), DTypeError, "data<{}>() called on a {} tensor",
                 dtype_name(dtype_of<T>()), dtype_name(dtype()));
  return static_cast<T*>(data_ptr());
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  KINDLING_CHECK(dtype() == dtype_of<T>(), DTypeError, "to_vector<{}>() called on a {} tensor",
                 dtype_name(dtype_of<T>()), dtype_name(dtype()));
  Tensor dense = detach().contiguous();
  std::vector<T> out(static_cast<size_t>(numel()));
  if (!out.empty()) backend(device()).copy_to_host(out.data(), dense.data_ptr(), out.size() * sizeof(T));
  return out;
}

template <typename T>
T Tensor::item() const {
  KINDLING_CHECK(numel() == 1, ShapeError, "item(): tensor {} has {} elements, expected 1",
                 shape_str(shape()), numel());
  return to_vector<T>()[0];
}

#define KINDLING_INSTANTIATE_DATA(T)                    \
  template T* Tensor::data<T>() const;                  \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T Tensor::item<T>() const;
KINDLING_INSTANTIATE_DATA(float)
KINDLING_INSTANTIATE_DATA(int64_t)
KINDLING_INSTANTIATE_DATA(uint8_t)
#undef KINDLING_INSTANTIATE_DATA

// ---- copies ----
namespace {
// A contiguous copy on the same device, without recording.
Tensor dense_copy(const Tensor& src, DType dtype) {
  Tensor out = empty(src.shape(), TensorOptions{}.with_dtype(dtype).with_device(src.device()));
  if (src.numel() > 0) backend(src.device()).copy(out, src);
  return out;
}
}  // namespace

Tensor Tensor::clone() const {
  Tensor out = dense_copy(*this, dtype());
  if (needs_grad({*this}))
    record("CloneBackward", {*this}, out, [](const GradOutputs& g) { return std::vector<Tensor>{g[0]}; });
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  return dense_copy(*this, target);  // not differentiable: only f32 carries gradients
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor src = detach().contiguous();
  Tensor out = empty(shape(), TensorOptions{}.with_dtype(dtype()).with_device(target));
  const size_t bytes = size_t(numel()) * dtype_size(dtype());
  if (bytes > 0) {
    if (device().is_cpu())
      backend(target).copy_from_host(out.data_ptr(), src.data_ptr(), bytes);
    else if (target.is_cpu())
      backend(device()).copy_to_host(out.data_ptr(), src.data_ptr(), bytes);
    else
      return to(Device::cpu()).to(target);
  }
  if (needs_grad({*this})) {
    record("ToDeviceBackward", {*this}, out,
           [source = device()](const GradOutputs& g) { return std::vector<Tensor>{g[0].to(source)}; });
  }
  return out;
}

// ---- autograd ----
bool Tensor::requires_grad() const { return impl_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  KINDLING_CHECK(is_leaf(), AutogradError,
                 "set_requires_grad: only leaf tensors can change requires_grad; this one comes from {}",
                 impl_->grad_fn ? impl_->grad_fn->name() : "?");
  KINDLING_CHECK(!requires_grad || dtype() == DType::f32, DTypeError,
                 "set_requires_grad: only f32 tensors can require grad, this one is {}", describe());
  impl_->requires_grad = requires_grad;
  return *this;
}

const Tensor& Tensor::grad() const { return impl_->grad; }
void Tensor::set_grad(const Tensor& grad) { impl_->grad = grad; }
std::shared_ptr<Node> Tensor::grad_fn() const { return impl_->grad_fn; }
bool Tensor::is_leaf() const { return impl_->grad_fn == nullptr; }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  run_backward({*this}, {gradient}, retain_graph);
}

Tensor Tensor::detach() const { return as_strided(*this, shape(), strides(), offset()); }

// ---- in place ----
namespace {
void check_inplace(const Tensor& t, const char* op) {
  KINDLING_CHECK(!(t.requires_grad() && GradMode::is_enabled()), AutogradError,
                 "{}: in-place change of a tensor that requires grad ({}) while grad mode is on; "
                 "use NoGradGuard or an out-of-place op",
                 op, t.describe());
}
// Runs `write(dst)` on a contiguous destination: this tensor, or a temporary copied back after.
template <typename Write>
void write_through(Tensor& self, Write write) {
  if (self.is_contiguous()) {
    write(self);
  } else {
    Tensor dense = dense_copy(self, self.dtype());
    write(dense);
    backend(self.device()).copy(self, dense);
  }
  self.storage()->bump_version();
}
}  // namespace

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, "fill_");
  if (numel() > 0) backend(device()).fill(*this, value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  const Tensor same_device = src.detach().to(device());
  if (numel() > 0) backend(device()).copy(*this, broadcast_view(same_device, shape()));
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, "add_");
  KINDLING_CHECK(dtype() == DType::f32 && other.dtype() == DType::f32, DTypeError,
                 "add_: expected f32 tensors, got {} and {}", describe(), other.describe());
  KINDLING_CHECK(other.device() == device(), DeviceError, "add_: {} and {} are on different devices",
                 describe(), other.describe());
  Backend& be = backend(device());
  Tensor addend = broadcast_view(other.detach(), shape());
  if (alpha != 1.0) {
    Tensor scaled = empty(shape(), TensorOptions{}.with_device(device()));
    be.unary(UnaryOp::Affine, scaled, addend, float(alpha), 0.0f);
    addend = scaled;
  }
  write_through(*this, [&](const Tensor& dst) { be.binary(BinaryOp::Add, dst, dst, addend); });
  return *this;
}

Tensor& Tensor::mul_(double value) {
  check_inplace(*this, "mul_");
  KINDLING_CHECK(dtype() == DType::f32, DTypeError, "mul_: expected an f32 tensor, got {}", describe());
  Backend& be = backend(device());
  write_through(*this, [&](const Tensor& dst) { be.unary(UnaryOp::Affine, dst, dst, float(value), 0.0f); });
  return *this;
}

// ---- printing ----
namespace {
void print_level(std::ostringstream& os, const std::vector<double>& values, const Shape& shape, size_t dim,
                 int64_t base, int64_t stride_product, bool is_float, int indent) {
  const int64_t n = shape[dim];
  const int64_t inner = stride_product / std::max<int64_t>(n, 1);
  constexpr int64_t kEdge = 3;  // elements shown at each end of a long dim
  const bool elide = n > 2 * kEdge + 1;
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (elide && i == kEdge) {
      os << (dim + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - kEdge;
    }
    if (dim + 1 == shape.size()) {
      const double v = values[size_t(base + i)];
      os << (is_float ? fmt::format("{:.4f}", v) : fmt::format("{}", int64_t(v)));
      if (i + 1 < n) os << ", ";
    } else {
      print_level(os, values, shape, dim + 1, base + i * inner, inner, is_float, indent + 1);
      if (i + 1 < n) os << ",\n" << std::string(indent + 1, ' ');
    }
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<double> values;
  Tensor host = detach().cpu().contiguous();
  for (int64_t i = 0; i < numel(); ++i) {
    switch (dtype()) {
      case DType::f32:
        values.push_back(host.data<float>()[i]);
        break;
      case DType::i64:
        values.push_back(double(host.data<int64_t>()[i]));
        break;
      case DType::u8:
        values.push_back(host.data<uint8_t>()[i]);
        break;
      case DType::bf16:
        values.push_back(0.0);
        break;
    }
  }
  std::ostringstream os;
  os << "tensor(";
  if (dim() == 0)
    os << (dtype() == DType::f32 ? fmt::format("{:.4f}", values[0]) : fmt::format("{}", int64_t(values[0])));
  else if (numel() == 0)
    os << "[]";
  else
    print_level(os, values, shape(), 0, 0, numel(), dtype() == DType::f32, 7);
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype());
  if (!device().is_cpu()) os << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace kindling
