// Views (Tensor methods declared in core/tensor.h) and the free shape functions cat, stack and
// sum_to, each with its backward. A view shares storage: it only computes a new shape, strides and
// offset. Backward of a view is the inverse rearrangement of the gradient: reshape back, inverse
// permutation, scatter into zeros (slice/select), or summing (expand).
#include "ops/shape.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/op_checks.h"
#include "ops/reduce.h"

#include <algorithm>
#include <optional>

namespace kindling {
namespace {

// A view of self with new geometry; records `backward_name` whose gradient is grad_fn(g).
template <typename GradFn>
Tensor make_view(const Tensor& self, const Shape& shape, const Shape& strides, int64_t offset,
                 const char* backward_name, GradFn grad_fn) {
  Tensor out = as_strided(self, shape, strides, offset);
  if (needs_grad({self}))
    record(backward_name, {self}, out,
           [grad_fn](const GradOutputs& g) { return std::vector<Tensor>{grad_fn(g[0])}; });
  return out;
}

// For views whose inverse is a reshape back to the input's shape (view, squeeze, unsqueeze).
Tensor reshaped_view(const Tensor& self, const Shape& shape, const Shape& strides, const char* name) {
  return make_view(self, shape, strides, self.offset(), name,
                   [input_shape = self.shape()](const Tensor& g) { return g.reshape(input_shape); });
}

int64_t dim_with_size(const Tensor& t, int64_t dim, const char* op) {
  KINDLING_CHECK(t.dim() > 0, ShapeError, "{}: needs a tensor with at least one dim, got {}", op,
                 t.describe());
  return wrap_dim(dim, t.dim(), op);
}

// Resolves one -1 in `shape` against numel; ShapeError when the sizes cannot hold numel elements.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1;
  std::optional<size_t> infer;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      KINDLING_CHECK(!infer, ShapeError, "{}: only one dim can be -1, got {}", op, shape_str(shape));
      infer = i;
    } else {
      KINDLING_CHECK(shape[i] >= 0, ShapeError, "{}: invalid size {} in {}", op, shape[i], shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer) {
    KINDLING_CHECK(known != 0 && numel % known == 0, ShapeError,
                   "{}: shape {} is invalid for a tensor of {} elements", op, shape_str(shape), numel);
    out[*infer] = numel / known;
  }
  KINDLING_CHECK(shape_numel(out) == numel, ShapeError, "{}: shape {} is invalid for a tensor of {} elements",
                 op, shape_str(shape), numel);
  return out;
}

// Strides that view the same elements with `shape`, or nothing when the input's strides do not
// allow it (PyTorch's computeStride: the new shape must split or merge only runs of dims that
// are contiguous with each other).
std::optional<Shape> view_strides(const Shape& old_shape_in, const Shape& old_strides_in,
                                  const Shape& shape) {
  if (shape_numel(old_shape_in) == 0) return contiguous_strides(shape);
  Shape old_shape = old_shape_in, old_strides = old_strides_in;
  if (old_shape.empty()) old_shape = {1}, old_strides = {1};
  Shape strides(shape.size());
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = int64_t(old_shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[tensor_d];
    const bool chunk_ends = tensor_d == 0 || (old_shape[tensor_d - 1] != 1 &&
                                              old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
      strides[view_d] = view_numel * chunk_base_stride;
      view_numel *= shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (tensor_d > 0) {
      chunk_base_stride = old_strides[tensor_d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

}  // namespace

// ---- reshaping views ----
Tensor Tensor::view(const Shape& shape_in) const {
  const Shape shape = infer_shape(shape_in, numel(), "view");
  const std::optional<Shape> strides = view_strides(this->shape(), this->strides(), shape);
  KINDLING_CHECK(strides.has_value(), ShapeError,
                 "view: cannot view {} with strides {} as {} without a copy; use reshape", describe(),
                 shape_str(this->strides()), shape_str(shape));
  return reshaped_view(*this, shape, *strides, "ViewBackward");
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  const Shape shape = infer_shape(shape_in, numel(), "reshape");
  if (auto strides = view_strides(this->shape(), this->strides(), shape))
    return reshaped_view(*this, shape, *strides, "ReshapeBackward");
  return contiguous().view(shape);  // the copy records CloneBackward, the view ViewBackward
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t start = wrap_dim(start_dim, dim(), "flatten"), end = wrap_dim(end_dim, dim(), "flatten");
  KINDLING_CHECK(start <= end, ShapeError, "flatten: start dim {} is after end dim {} for {}", start_dim,
                 end_dim, describe());
  Shape shape(this->shape().begin(), this->shape().begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= size(d);
  shape.push_back(merged);
  shape.insert(shape.end(), this->shape().begin() + end + 1, this->shape().end());
  return reshape(shape);
}

Tensor Tensor::squeeze() const {
  Shape shape, strides;
  for (int64_t d = 0; d < dim(); ++d) {
    if (size(d) == 1) continue;
    shape.push_back(size(d));
    strides.push_back(stride(d));
  }
  return reshaped_view(*this, shape, strides, "SqueezeBackward");
}

Tensor Tensor::squeeze(int64_t dim_in) const {
  const int64_t d = dim_with_size(*this, dim_in, "squeeze");
  Shape shape = this->shape(), strides = this->strides();
  if (shape[d] == 1) {
    shape.erase(shape.begin() + d);
    strides.erase(strides.begin() + d);
  }
  return reshaped_view(*this, shape, strides, "SqueezeBackward");
}

Tensor Tensor::unsqueeze(int64_t dim_in) const {
  const int64_t d = wrap_dim(dim_in, dim() + 1, "unsqueeze");
  Shape shape = this->shape(), strides = this->strides();
  const int64_t new_stride = d < dim() ? strides[d] * shape[d] : 1;
  shape.insert(shape.begin() + d, 1);
  strides.insert(strides.begin() + d, new_stride);
  return reshaped_view(*this, shape, strides, "UnsqueezeBackward");
}

// ---- rearranging views ----
Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  KINDLING_CHECK(int64_t(dims.size()) == dim(), ShapeError, "permute: {} dims given for {} ({} dims)",
                 dims.size(), describe(), dim());
  std::vector<int64_t> inverse(dims.size(), -1);
  Shape shape(dims.size()), strides(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], dim(), "permute");
    KINDLING_CHECK(inverse[d] == -1, ShapeError, "permute: dim {} appears twice in {}", d, shape_str(dims));
    inverse[d] = int64_t(i);
    shape[i] = size(d);
    strides[i] = stride(d);
  }
  return make_view(*this, shape, strides, offset(), "PermuteBackward",
                   [inverse](const Tensor& g) { return g.permute(inverse); });
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  if (dim() < 2) {  // a 0-d or 1-d tensor is its own transpose; the dims must still be valid
    wrap_dim(dim0, dim(), "transpose");
    wrap_dim(dim1, dim(), "transpose");
    return permute(dim() == 0 ? std::vector<int64_t>{} : std::vector<int64_t>{0});
  }
  std::vector<int64_t> order(static_cast<size_t>(dim()));
  for (int64_t d = 0; d < dim(); ++d) order[d] = d;
  std::swap(order[wrap_dim(dim0, dim(), "transpose")], order[wrap_dim(dim1, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::expand(const Shape& shape_in) const {
  KINDLING_CHECK(shape_in.size() >= size_t(dim()), ShapeError, "expand: target {} has fewer dims than {}",
                 shape_str(shape_in), describe());
  const size_t lead = shape_in.size() - size_t(dim());
  Shape shape(shape_in.size()), strides(shape_in.size(), 0);
  for (size_t i = 0; i < shape_in.size(); ++i) {
    if (i < lead) {
      KINDLING_CHECK(shape_in[i] >= 0, ShapeError, "expand: new leading dim {} of {} must be >= 0", i,
                     shape_str(shape_in));
      shape[i] = shape_in[i];
      continue;
    }
    const int64_t from = this->shape()[i - lead];
    const int64_t to = shape_in[i] == -1 ? from : shape_in[i];
    KINDLING_CHECK(to == from || from == 1, ShapeError, "expand: cannot expand {} to {} (dim {}: {} vs {})",
                   shape_str(this->shape()), shape_str(shape_in), i, from, to);
    shape[i] = to;
    strides[i] = to == from ? this->strides()[i - lead] : 0;
  }
  return make_view(*this, shape, strides, offset(), "ExpandBackward",
                   [input_shape = this->shape()](const Tensor& g) { return sum_to(g, input_shape); });
}

// ---- selecting views: backward scatters the gradient into zeros of the input's shape ----
Tensor Tensor::slice(int64_t dim_in, int64_t start, int64_t end, int64_t step) const {
  const int64_t d = dim_with_size(*this, dim_in, "slice");
  KINDLING_CHECK(step > 0, ValueError, "slice: step must be positive, got {}", step);
  const int64_t n = size(d);
  // Python rules: negative indices count from the end; out-of-range bounds are clamped.
  auto clamp_index = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  start = clamp_index(start);
  end = std::max(start, clamp_index(end));
  Shape shape = this->shape(), strides = this->strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  return make_view(*this, shape, strides, offset() + start * stride(d), "SliceBackward",
                   [input_shape = this->shape(), d, start, end, step](const Tensor& g) {
                     Tensor grad = zeros(input_shape, detail::f32_on(g.device()));
                     grad.slice(d, start, end, step).copy_(g);
                     return grad;
                   });
}

Tensor Tensor::narrow(int64_t dim_in, int64_t start, int64_t length) const {
  const int64_t d = dim_with_size(*this, dim_in, "narrow");
  const int64_t n = size(d);
  if (start < 0) start += n;
  KINDLING_CHECK(start >= 0 && length >= 0 && start + length <= n, ShapeError,
                 "narrow: start {} and length {} do not fit dim {} of size {} in {}", start, length, d, n,
                 describe());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim_in, int64_t index) const {
  const int64_t d = dim_with_size(*this, dim_in, "select");
  const int64_t n = size(d);
  KINDLING_CHECK(index >= -n && index < n, ShapeError,
                 "select: index {} is out of range for dim {} of size {} in {}", index, d, n, describe());
  if (index < 0) index += n;
  Shape shape = this->shape(), strides = this->strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return make_view(*this, shape, strides, offset() + index * stride(d), "SelectBackward",
                   [input_shape = this->shape(), d, index](const Tensor& g) {
                     Tensor grad = zeros(input_shape, detail::f32_on(g.device()));
                     grad.select(d, index).copy_(g);
                     return grad;
                   });
}

// ---- free functions ----
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  KINDLING_CHECK(!tensors.empty(), ValueError, "cat: expected at least one tensor");
  const Tensor& first = tensors[0];
  detail::check_defined("cat", first, "tensor 0");
  KINDLING_CHECK(first.dim() > 0, ShapeError, "cat: tensor 0 is zero-dimensional ({})", first.describe());
  const int64_t d = wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_defined("cat", t, "a tensor");
    KINDLING_CHECK(t.dtype() == first.dtype(), DTypeError, "cat: tensor {} is {} but tensor 0 is {}", i,
                   t.describe(), first.describe());
    KINDLING_CHECK(t.device() == first.device(), DeviceError, "cat: tensor {} is {} but tensor 0 is {}", i,
                   t.describe(), first.describe());
    bool fits = t.dim() == first.dim();
    for (int64_t k = 0; fits && k < t.dim(); ++k) fits = k == d || t.size(k) == first.size(k);
    KINDLING_CHECK(fits, ShapeError, "cat: tensor {} has shape {}, which does not match {} outside dim {}", i,
                   shape_str(t.shape()), shape_str(first.shape()), d);
    shape[d] += t.size(d);
  }
  Tensor out = empty(shape, detail::options_of(first));
  std::vector<int64_t> starts;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(start);
    if (t.numel() > 0) backend(out.device()).copy(out.narrow(d, start, t.size(d)), t);
    start += t.size(d);
  }
  if (needs_grad(tensors)) {
    record("CatBackward", tensors, out, [d, starts, out_shape = shape](const GradOutputs& g) {
      std::vector<Tensor> grads(starts.size());
      for (size_t i = 0; i < starts.size(); ++i) {
        const int64_t end = i + 1 < starts.size() ? starts[i + 1] : out_shape[d];
        if (g.needs(i)) grads[i] = g[0].narrow(d, starts[i], end - starts[i]);
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  KINDLING_CHECK(!tensors.empty(), ValueError, "stack: expected at least one tensor");
  detail::check_defined("stack", tensors[0], "tensor 0");
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    detail::check_defined("stack", tensors[i], "a tensor");
    KINDLING_CHECK(tensors[i].shape() == tensors[0].shape(), ShapeError,
                   "stack: tensor {} has shape {}, tensor 0 has {}", i, shape_str(tensors[i].shape()),
                   shape_str(tensors[0].shape()));
    expanded.push_back(tensors[i].unsqueeze(d));
  }
  return cat(expanded, d);
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  if (t.shape() == shape) return t;
  const int64_t lead = t.dim() - int64_t(shape.size());
  bool fits = lead >= 0;
  std::vector<int64_t> dims;
  for (int64_t d = 0; fits && d < t.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] != t.size(d)) {
      fits = shape[d - lead] == 1;
      dims.push_back(d);
    }
  }
  KINDLING_CHECK(fits, ShapeError, "sum_to: cannot sum {} to {}: the target does not broadcast to it",
                 shape_str(t.shape()), shape_str(shape));
  return sum(t, dims, true).reshape(shape);
}

}  // namespace kindling
