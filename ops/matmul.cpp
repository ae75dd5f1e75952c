// matmul and linear front doors with their backward formulas. Kernel: Backend::gemm
// (ops/cpu/matmul.cpp: OpenBLAS; ops/cuda/matmul.cu: cuBLAS).
#include "ops/matmul.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/op_checks.h"
#include "ops/reduce.h"
#include "ops/shape.h"

#include <optional>

namespace kindling {
namespace {

// How gemm reads one matrix operand: row-major with leading dimension ld, or (trans) the
// transpose of a row-major matrix. `storage` keeps a copy alive when the view had to be copied.
struct GemmOperand {
  const float* data;
  bool trans;
  int64_t ld;
  int64_t batch_stride;
  Tensor storage;
};

struct Layout {
  bool trans;
  int64_t ld;
};

// A [rows, cols] view with strides (rs, cs) is a BLAS matrix when one stride is 1 and the other
// spans a whole row (column); size-1 dims may have any stride.
std::optional<Layout> blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  const int64_t min_row_ld = std::max<int64_t>(1, cols), min_col_ld = std::max<int64_t>(1, rows);
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= min_row_ld))
    return Layout{false, rows == 1 ? min_row_ld : rs};
  if ((rs == 1 || rows == 1) && (cols == 1 || cs >= min_col_ld))
    return Layout{true, cols == 1 ? min_col_ld : cs};
  return std::nullopt;
}

// x is [rows, cols] or [batch, rows, cols]; copied only when its strides are not a BLAS layout.
GemmOperand gemm_operand(const Tensor& x) {
  Tensor src = x.detach();
  const int64_t n = src.dim();
  std::optional<Layout> layout =
      blas_layout(src.size(n - 2), src.size(n - 1), src.stride(n - 2), src.stride(n - 1));
  if (!layout) {
    src = src.contiguous();
    layout = blas_layout(src.size(n - 2), src.size(n - 1), src.stride(n - 2), src.stride(n - 1));
  }
  const int64_t batch_stride = n == 3 && src.size(0) > 1 ? src.stride(0) : 0;
  return {src.data<float>(), layout->trans, layout->ld, batch_stride, src};
}

Tensor last_two_swapped(const Tensor& t) { return t.transpose(-1, -2); }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_f32("matmul", a, "first operand");
  detail::check_f32("matmul", b, "second operand");
  detail::check_same_device("matmul", {&a, &b});
  KINDLING_CHECK((a.dim() == 2 || a.dim() == 3) && (b.dim() == 2 || b.dim() == 3), ShapeError,
                 "matmul: expected 2-D or 3-D operands, got {} and {}", shape_str(a.shape()),
                 shape_str(b.shape()));
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  KINDLING_CHECK(b.size(-2) == K, ShapeError, "matmul: inner sizes differ: {} · {} ({} vs {})",
                 shape_str(a.shape()), shape_str(b.shape()), K, b.size(-2));
  const int64_t batch_a = a.dim() == 3 ? a.size(0) : 1, batch_b = b.dim() == 3 ? b.size(0) : 1;
  KINDLING_CHECK(batch_a == batch_b || batch_a == 1 || batch_b == 1, ShapeError,
                 "matmul: batch sizes differ: {} · {}", shape_str(a.shape()), shape_str(b.shape()));
  const int64_t batch = std::max(batch_a, batch_b);
  Shape out_shape = {M, N};
  if (a.dim() == 3 || b.dim() == 3) out_shape.insert(out_shape.begin(), batch);
  Tensor out = empty(out_shape, detail::f32_on(a.device()));

  if (out.numel() > 0) {
    const GemmOperand A = gemm_operand(a), B = gemm_operand(b);
    Backend& be = backend(a.device());
    if (K == 0) {
      out.detach().zero_();
    } else if (batch > 1 && B.batch_stride == 0 && !A.trans && A.batch_stride == M * A.ld) {
      // b shared by a batch of row-major a: one [batch*M, K] · [K, N] product.
      be.gemm(false, B.trans, batch * M, N, K, 1.0f, A.data, A.ld, 0, B.data, B.ld, 0, 0.0f,
              out.data<float>(), N, 0, 1);
    } else {
      be.gemm(A.trans, B.trans, M, N, K, 1.0f, A.data, A.ld, A.batch_stride, B.data, B.ld, B.batch_stride,
              0.0f, out.data<float>(), N, M * N, batch);
    }
  }

  if (needs_grad({a, b})) {
    // dA = dC · Bᵀ, dB = Aᵀ · dC (transposes are views, read by gemm in place), summed over any
    // batch the operand was shared across.
    record("MatmulBackward", {a, b}, out, [sa = SavedTensor(a), sb = SavedTensor(b)](const GradOutputs& g) {
      const Tensor &x = sa.unpack(), &y = sb.unpack();
      std::vector<Tensor> grads(2);
      if (g.needs(0)) grads[0] = sum_to(matmul(g[0], last_two_swapped(y)), x.shape());
      if (g.needs(1)) {
        if (x.dim() == 3 && y.dim() == 2)  // fold the batch into the rows: one product
          grads[1] = matmul(x.reshape({-1, x.size(-1)}).t(), g[0].reshape({-1, y.size(-1)}));
        else
          grads[1] = sum_to(matmul(last_two_swapped(x), g[0]), y.shape());
      }
      return grads;
    });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_f32("linear", x, "input");
  detail::check_f32("linear", weight, "weight");
  detail::check_same_device("linear", {&x, &weight});
  KINDLING_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1), ShapeError,
                 "linear: expected input [N,in] and weight [out,in], got {} and {}", shape_str(x.shape()),
                 shape_str(weight.shape()));
  const int64_t N = x.size(0), in = x.size(1), out_features = weight.size(0);
  if (bias.defined()) {
    detail::check_f32("linear", bias, "bias");
    detail::check_same_device("linear", {&x, &bias});
    KINDLING_CHECK(bias.shape() == Shape{out_features}, ShapeError,
                   "linear: bias is {}, expected [{}] for weight {}", shape_str(bias.shape()), out_features,
                   shape_str(weight.shape()));
  }
  Tensor out = empty({N, out_features}, detail::f32_on(x.device()));
  if (out.numel() > 0) {
    Backend& be = backend(x.device());
    // The bias is written first and gemm accumulates onto it (beta = 1): no extra pass.
    if (bias.defined()) be.copy(out, broadcast_view(bias.detach(), out.shape()));
    if (in == 0) {
      if (!bias.defined()) out.detach().zero_();
    } else {
      const GemmOperand X = gemm_operand(x), Wt = gemm_operand(weight.detach().t());
      be.gemm(X.trans, Wt.trans, N, out_features, in, 1.0f, X.data, X.ld, 0, Wt.data, Wt.ld, 0,
              bias.defined() ? 1.0f : 0.0f, out.data<float>(), out_features, 0, 1);
    }
  }
  if (needs_grad({x, weight, bias})) {
    record("LinearBackward", {x, weight, bias}, out,
           [sx = SavedTensor(x), sw = SavedTensor(weight)](const GradOutputs& g) {
             std::vector<Tensor> grads(3);
             if (g.needs(0)) grads[0] = matmul(g[0], sw.unpack());      // [N,out]·[out,in]
             if (g.needs(1)) grads[1] = matmul(g[0].t(), sx.unpack());  // [out,N]·[N,in]
             if (g.needs(2)) grads[2] = sum(g[0], 0);
             return grads;
           });
  }
  return out;
}

}  // namespace kindling
