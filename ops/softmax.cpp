// softmax, log_softmax and one_hot front doors. Kernels: Backend::softmax_fwd/softmax_bwd/one_hot
// (ops/cpu/softmax.cpp, ops/cuda/softmax.cu) work on contiguous [rows, C] over the last dim; a
// softmax over another dim runs on a transposed copy and returns a transposed view of the result.
#include "ops/softmax.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/op_checks.h"

namespace kindling {
namespace {

// The rows-by-C matrix that the kernels take for a tensor whose softmax dim is last.
Tensor as_rows(const Tensor& t) {
  const int64_t C = t.size(-1);
  return t.view({C == 0 ? 0 : t.numel() / C, C});
}

Tensor softmax_impl(const char* op, const Tensor& x, int64_t dim, bool log) {
  detail::check_f32(op, x);
  KINDLING_CHECK(x.dim() >= 1, ShapeError, "{}: needs a tensor with at least one dim, got {}", op,
                 x.describe());
  const int64_t d = wrap_dim(dim, x.dim(), op);
  const Tensor moved = x.detach().transpose(d, -1).contiguous();  // a no-op when d is last
  const Tensor result = empty(moved.shape(), detail::f32_on(x.device()));
  Backend& be = backend(x.device());
  if (result.numel() > 0) be.softmax_fwd(as_rows(result), as_rows(moved), log);
  Tensor out = result.transpose(d, -1);
  if (needs_grad({x})) {
    record(log ? "LogSoftmaxBackward" : "SoftmaxBackward", {x}, out,
           [saved = SavedTensor(result), d, log](const GradOutputs& g) {
             const Tensor& y = saved.unpack();
             const Tensor grad_out = g[0].transpose(d, -1).contiguous();
             Tensor grad_in = empty(y.shape(), detail::f32_on(y.device()));
             if (grad_in.numel() > 0)
               backend(y.device()).softmax_bwd(as_rows(grad_in), as_rows(grad_out), as_rows(y), log);
             return std::vector<Tensor>{grad_in.transpose(d, -1)};
           });
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

Tensor one_hot(const Tensor& labels, int64_t num_classes) {
  detail::check_defined("one_hot", labels, "labels");
  KINDLING_CHECK(labels.dtype() == DType::i64 && labels.dim() == 1, DTypeError,
                 "one_hot: labels must be i64 [N], got {}", labels.describe());
  KINDLING_CHECK(num_classes >= 1, ValueError, "one_hot: num_classes must be >= 1, got {}", num_classes);
  const std::vector<int64_t> values = labels.to_vector<int64_t>();
  for (size_t row = 0; row < values.size(); ++row)
    KINDLING_CHECK(values[row] >= 0 && values[row] < num_classes, ValueError,
                   "one_hot: label {} at row {} is out of range [0, {})", values[row], row, num_classes);
  Tensor out = empty({labels.size(0), num_classes}, detail::f32_on(labels.device()));
  if (out.numel() > 0) backend(labels.device()).one_hot(out, labels.contiguous());
  return out;
}

}  // namespace kindling
