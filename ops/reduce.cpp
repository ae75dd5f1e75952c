// Reduction front doors and their backward formulas. The kernel (Backend::reduce) sees a
// contiguous input as [outer, reduce, inner]; when the reduced dims are not one block of the
// input's layout, the input is permuted (kept dims first) and copied once.
#include "ops/reduce.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/elementwise.h"
#include "ops/op_checks.h"

#include <algorithm>

namespace kindling {
namespace {

struct Reduction {
  Tensor input;  // contiguous, detached, laid out as [outer, reduce, inner]
  int64_t outer = 1, reduce = 1, inner = 1;
  Shape out_shape;            // the result's shape (keepdim or not, as asked)
  Shape keep_shape;           // the input's shape with reduced dims as 1, for backward
  std::vector<int64_t> dims;  // reduced dims, normalised
};

Reduction plan_reduction(const char* op, const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  const int64_t ndim = t.dim();
  std::vector<bool> reduced(size_t(ndim), false);
  Reduction r;
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, ndim, op);
    if (ndim == 0) continue;  // dim 0 / -1 of a 0-d tensor names its one element
    KINDLING_CHECK(!reduced[w], ShapeError, "{}: dim {} appears twice in {}", op, w, shape_str(dims));
    reduced[w] = true;
    r.dims.push_back(w);
  }
  std::sort(r.dims.begin(), r.dims.end());
  // Size-1 dims never matter for layout; among the others, are the reduced ones adjacent?
  std::vector<int64_t> kept_order, reduced_order;
  int64_t first = -1, last = -1;
  for (int64_t d = 0; d < ndim; ++d) {
    r.keep_shape.push_back(reduced[d] ? 1 : t.size(d));
    if (!reduced[d])
      r.out_shape.push_back(t.size(d));
    else if (keepdim)
      r.out_shape.push_back(1);
    (reduced[d] ? reduced_order : kept_order).push_back(d);
    if (t.size(d) == 1 || !reduced[d]) continue;
    if (first < 0) first = d;
    last = d;
  }
  bool block = true;
  for (int64_t d = first; first >= 0 && d <= last; ++d) block = block && (reduced[d] || t.size(d) == 1);
  const Tensor detached = t.detach();
  if (block) {
    r.input = detached.contiguous();
    for (int64_t d = 0; d < ndim; ++d) {
      if (first >= 0 && d >= first && d <= last)
        r.reduce *= t.size(d);
      else if (first >= 0 && d > last)
        r.inner *= t.size(d);
      else
        r.outer *= t.size(d);
    }
  } else {
    std::vector<int64_t> order = kept_order;
    order.insert(order.end(), reduced_order.begin(), reduced_order.end());
    r.input = detached.permute(order).contiguous();
    for (int64_t d : kept_order) r.outer *= t.size(d);
    for (int64_t d : reduced_order) r.reduce *= t.size(d);
  }
  return r;
}

std::vector<int64_t> all_dims(const Tensor& t) {
  std::vector<int64_t> dims(static_cast<size_t>(t.dim()));
  for (int64_t d = 0; d < t.dim(); ++d) dims[d] = d;
  return dims;
}

bool is_index_op(ReduceOp kind) { return kind == ReduceOp::ArgMax || kind == ReduceOp::ArgMin; }

Tensor run_reduction(const char* op, ReduceOp kind, const Tensor& t, const Reduction& r) {
  const bool needs_element = kind != ReduceOp::Sum && kind != ReduceOp::Mean && kind != ReduceOp::SumSquares;
  KINDLING_CHECK(!needs_element || r.reduce > 0 || r.outer * r.inner == 0, ShapeError,
                 "{}: cannot reduce over an empty dim of {}", op, t.describe());
  TensorOptions options = detail::f32_on(t.device());
  if (is_index_op(kind)) options.dtype = DType::i64;
  Tensor out = empty(r.out_shape, options);
  if (out.numel() > 0) backend(t.device()).reduce(kind, out, r.input, r.outer, r.reduce, r.inner);
  return out;
}

// sum and mean: the gradient is the upstream one broadcast back over the reduced dims (scaled).
Tensor sum_or_mean(const char* op, ReduceOp kind, const Tensor& t, const std::vector<int64_t>& dims,
                   bool keepdim) {
  detail::check_f32(op, t);
  const Reduction r = plan_reduction(op, t, dims, keepdim);
  Tensor out = run_reduction(op, kind, t, r);
  if (needs_grad({t})) {
    const double scale = kind == ReduceOp::Mean ? 1.0 / double(r.reduce) : 1.0;
    record(kind == ReduceOp::Mean ? "MeanBackward" : "SumBackward", {t}, out,
           [scale, keep_shape = r.keep_shape, input_shape = t.shape()](const GradOutputs& g) {
             Tensor grad = scale == 1.0 ? g[0] : mul(g[0], scale);
             return std::vector<Tensor>{grad.reshape(keep_shape).expand(input_shape)};
           });
  }
  return out;
}

// max and min: the gradient goes to the elements equal to the result, split between ties.
Tensor extremum(const char* op, ReduceOp kind, const Tensor& t, const std::vector<int64_t>& dims,
                bool keepdim) {
  detail::check_f32(op, t);
  const Reduction r = plan_reduction(op, t, dims, keepdim);
  Tensor out = run_reduction(op, kind, t, r);
  if (needs_grad({t})) {
    record(kind == ReduceOp::Max ? "MaxBackward" : "MinBackward", {t}, out,
           [st = SavedTensor(t), so = SavedTensor(out), keep_shape = r.keep_shape,
            dims = r.dims](const GradOutputs& g) {
             const Tensor& x = st.unpack();
             Tensor mask = eq(x, so.unpack().reshape(keep_shape));
             Tensor share = g[0].reshape(keep_shape);
             if (!dims.empty()) share = div(share, sum(mask, dims, true));
             return std::vector<Tensor>{mul(mask, share)};
           });
  }
  return out;
}

Tensor index_of(const char* op, ReduceOp kind, const Tensor& t, const std::vector<int64_t>& dims,
                bool keepdim) {
  detail::check_f32(op, t);
  return run_reduction(op, kind, t, plan_reduction(op, t, dims, keepdim));
}

std::vector<int64_t> some_dims(const char* op, const std::vector<int64_t>& dims) {
  KINDLING_CHECK(!dims.empty(), ShapeError, "{}: no dims given (call {}(t) to reduce over all dims)", op, op);
  return dims;
}

}  // namespace

Tensor sum(const Tensor& t) { return sum_or_mean("sum", ReduceOp::Sum, t, all_dims(t), false); }
Tensor sum(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_or_mean("sum", ReduceOp::Sum, t, some_dims("sum", dims), keepdim);
}
Tensor sum(const Tensor& t, int64_t dim, bool keepdim) { return sum(t, std::vector<int64_t>{dim}, keepdim); }

Tensor mean(const Tensor& t) { return sum_or_mean("mean", ReduceOp::Mean, t, all_dims(t), false); }
Tensor mean(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_or_mean("mean", ReduceOp::Mean, t, some_dims("mean", dims), keepdim);
}
Tensor mean(const Tensor& t, int64_t dim, bool keepdim) {
  return mean(t, std::vector<int64_t>{dim}, keepdim);
}

// d(sum x²)/dx = 2x.
Tensor sum_squares(const Tensor& t) {
  detail::check_f32("sum_squares", t);
  Tensor out = run_reduction("sum_squares", ReduceOp::SumSquares, t,
                             plan_reduction("sum_squares", t, all_dims(t), false));
  if (needs_grad({t}))
    record("SumSquaresBackward", {t}, out, [st = SavedTensor(t)](const GradOutputs& g) {
      return std::vector<Tensor>{mul(st.unpack(), mul(g[0], 2.0))};
    });
  return out;
}

Tensor max(const Tensor& t) { return extremum("max", ReduceOp::Max, t, all_dims(t), false); }
Tensor max(const Tensor& t, int64_t dim, bool keepdim) {
  return extremum("max", ReduceOp::Max, t, {dim}, keepdim);
}
Tensor min(const Tensor& t) { return extremum("min", ReduceOp::Min, t, all_dims(t), false); }
Tensor min(const Tensor& t, int64_t dim, bool keepdim) {
  return extremum("min", ReduceOp::Min, t, {dim}, keepdim);
}

Tensor argmax(const Tensor& t) { return index_of("argmax", ReduceOp::ArgMax, t, all_dims(t), false); }
Tensor argmax(const Tensor& t, int64_t dim, bool keepdim) {
  return index_of("argmax", ReduceOp::ArgMax, t, {dim}, keepdim);
}
Tensor argmin(const Tensor& t) { return index_of("argmin", ReduceOp::ArgMin, t, all_dims(t), false); }
Tensor argmin(const Tensor& t, int64_t dim, bool keepdim) {
  return index_of("argmin", ReduceOp::ArgMin, t, {dim}, keepdim);
}

}  // namespace kindling
