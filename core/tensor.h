// Tensor: a cheap, shared handle to a TensorImpl (shape, strides, offset, dtype, storage, autograd
// fields). Copying a Tensor copies the handle, never the data. Views share storage; contiguous()
// copies only when it must. Methods that compute (reshape, permute, arithmetic) are differentiable
// ops defined in ops/; this header only declares them.
#pragma once
#include "core/dtype.h"
#include "core/error.h"
#include "core/storage.h"

#include <functional>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace kindling {

class Node;
class Generator;
struct TensorImpl;

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;
  TensorOptions& with_dtype(DType d) {
    dtype = d;
    return *this;
  }
  TensorOptions& with_device(Device d) {
    device = d;
    return *this;
  }
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: no storage, defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  // ---- metadata ----
  const Shape& shape() const;
  const Shape& strides() const;  // in elements
  int64_t dim() const;
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t stride(int64_t dim) const;
  int64_t numel() const;
  int64_t offset() const;  // in elements, into storage
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;
  std::string describe() const;  // "f32[2,3] on cpu", for error messages

  // ---- data ----
  // Pointer to this view's first element on its device. data<T>() checks T against dtype().
  void* data_ptr() const;
  template <typename T>
  T* data() const;
  // Copies to the host. item() requires numel() == 1; to_vector() returns elements in logical order.
  template <typename T>
  T item() const;
  template <typename T>
  std::vector<T> to_vector() const;

  // ---- copies and conversions (differentiable where it makes sense) ----
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor clone() const;
  Tensor contiguous() const;

  // ---- views: share storage, differentiable ----
  Tensor reshape(const Shape& shape) const;  // a view when the strides allow it, else a copy
  Tensor view(const Shape& shape) const;     // must be a view; one dim may be -1
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops dim
  Tensor expand(const Shape& shape) const;          // stride 0 on broadcast dims; -1 keeps a size
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- autograd ----
  bool requires_grad() const;
  // Only leaves (tensors with no grad_fn) may have requires_grad changed. Returns *this.
  Tensor& set_requires_grad(bool requires_grad);
  const Tensor& grad() const;  // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad);
  std::shared_ptr<Node> grad_fn() const;
  bool is_leaf() const;
  // Reverse-mode: accumulates d(this)/d(leaf) into every leaf's grad. `gradient` is required unless
  // this is a single-element tensor. Frees saved tensors unless retain_graph.
  void backward(const Tensor& gradient = {}, bool retain_graph = false) const;
  // Same storage, no history, requires_grad false.
  Tensor detach() const;

  // ---- in place: bump the storage version. Refused on a tensor that requires grad while grad
  // mode is on (use NoGradGuard, as optimizers do). ----
  Tensor& zero_();
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);                       // src broadcast to this shape, any device
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other
  Tensor& mul_(double value);

  std::string str() const;  // readable printing, elided for large tensors

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  DType dtype = DType::f32;
  // autograd
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;         // set on outputs of recorded ops
  uint32_t output_nr = 0;                // which output of grad_fn this is
  std::weak_ptr<Node> grad_accumulator;  // leaves: the AccumulateGrad node, shared by all uses
  // leaves: run, in order, each time backward has added into grad (register_post_accumulate_grad_hook)
  std::vector<std::function<void(const Tensor& grad)>> post_accumulate_grad_hooks;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- factories (CPU random numbers come from one seeded generator, see core/rng.h) ----
Shape contiguous_strides(const Shape& shape);
// A tensor with fresh storage and contiguous strides; contents undefined.
Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor empty_like(const Tensor& t);
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor zeros_like(const Tensor& t);
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor ones_like(const Tensor& t);
Tensor full(const Shape& shape, double value, TensorOptions options = {});
Tensor arange(int64_t end, TensorOptions options = {});
Tensor arange(double start, double end, double step, TensorOptions options = {});
// Uniform in [low, high) and normal(mean, std); drawn on the CPU so every device sees the same values.
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr, double low = 0.0,
            double high = 1.0);
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* generator = nullptr,
             double mean = 0.0, double std = 1.0);
// Copies values (row-major) into a new tensor of T's dtype (options.dtype is not consulted);
// values.size() must equal the shape's element count.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions options = {});
// A view onto existing storage with explicit geometry; checks bounds only. Not differentiable.
Tensor as_strided(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

// NumPy broadcasting: the shape two operands broadcast to; ShapeError naming `op` if they don't.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// A non-recording view of t broadcast to `shape` (stride 0 on expanded dims). Ops use it to hand
// kernels operands of the output's shape; differentiable code uses Tensor::expand.
Tensor broadcast_view(const Tensor& t, const Shape& shape);
// Normalises a possibly negative dim against `ndim`; ShapeError naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace kindling
