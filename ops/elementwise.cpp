// Elementwise front doors and their backward formulas. Kernels: ops/cpu/elementwise.cpp and
// ops/cuda/elementwise.cu (Backend::unary, binary, where).
#include "ops/elementwise.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/op_checks.h"
#include "ops/shape.h"

namespace kindling {
namespace {

using detail::check_f32;
using detail::scalar_like;

// ---- kernels behind the front doors ----
Tensor unary_kernel(const char* op, UnaryOp kind, const Tensor& x, float alpha = 0.0f, float beta = 0.0f) {
  check_f32(op, x);
  Tensor out = empty(x.shape(), detail::f32_on(x.device()));
  if (out.numel() > 0) backend(x.device()).unary(kind, out, x, alpha, beta);
  return out;
}

Tensor binary_kernel(const char* op, BinaryOp kind, const Tensor& a, const Tensor& b) {
  check_f32(op, a, "first operand");
  check_f32(op, b, "second operand");
  detail::check_same_device(op, {&a, &b});
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = empty(shape, detail::f32_on(a.device()));
  if (out.numel() > 0)
    backend(a.device()).binary(kind, out, broadcast_view(a, shape), broadcast_view(b, shape));
  return out;
}

// ---- recording helpers: grad_x(g) returns the gradient for x (any shape x broadcasts to) ----
template <typename GradX>
void record_unary(const char* name, const Tensor& x, const Tensor& out, GradX grad_x) {
  record(name, {x}, out, [grad_x](const GradOutputs& g) { return std::vector<Tensor>{grad_x(g[0])}; });
}

template <typename GradA, typename GradB>
void record_binary(const char* name, const Tensor& a, const Tensor& b, const Tensor& out, GradA grad_a,
                   GradB grad_b) {
  record(name, {a, b}, out, [grad_a, grad_b, shape_a = a.shape(), shape_b = b.shape()](const GradOutputs& g) {
    std::vector<Tensor> grads(2);
    if (g.needs(0)) grads[0] = sum_to(grad_a(g[0]), shape_a);
    if (g.needs(1)) grads[1] = sum_to(grad_b(g[0]), shape_b);
    return grads;
  });
}

Tensor affine(const char* op, const char* backward_name, const Tensor& x, double alpha, double beta) {
  Tensor out = unary_kernel(op, UnaryOp::Affine, x, float(alpha), float(beta));
  if (needs_grad({x}))
    record_unary(backward_name, x, out,
                 [alpha](const Tensor& g) { return alpha == 1.0 ? g : mul(g, alpha); });
  return out;
}

Tensor compare(const char* op, BinaryOp kind, const Tensor& a, const Tensor& b) {
  detail::check_defined(op, a, "first operand");
  detail::check_defined(op, b, "second operand");
  // Comparisons take labels and indices too; f32 holds integers below 2^24 exactly.
  return binary_kernel(op, kind, a.detach().to(DType::f32), b.detach().to(DType::f32));
}

// Gradient share of `a` in maximum/minimum: 1 where a wins, 1/2 at ties, 0 where it loses.
Tensor winner_share(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor wins = is_max ? gt(a, b) : lt(a, b);
  return add(wins, mul(eq(a, b), 0.5));
}

Tensor extremum(const char* op, const char* backward_name, BinaryOp kind, const Tensor& a, const Tensor& b,
                bool is_max) {
  Tensor out = binary_kernel(op, kind, a, b);
  if (needs_grad({a, b})) {
    SavedTensor sa(a), sb(b);
    record_binary(
        backward_name, a, b, out,
        [sa, sb, is_max](const Tensor& g) { return mul(g, winner_share(sa.unpack(), sb.unpack(), is_max)); },
        [sa, sb, is_max](const Tensor& g) { return mul(g, winner_share(sb.unpack(), sa.unpack(), is_max)); });
  }
  return out;
}

}  // namespace

// ---- binary arithmetic ----
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel("add", BinaryOp::Add, a, b);
  if (needs_grad({a, b}))
    record_binary(
        "AddBackward", a, b, out, [](const Tensor& g) { return g; }, [](const Tensor& g) { return g; });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel("sub", BinaryOp::Sub, a, b);
  if (needs_grad({a, b}))
    record_binary(
        "SubBackward", a, b, out, [](const Tensor& g) { return g; }, [](const Tensor& g) { return neg(g); });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel("mul", BinaryOp::Mul, a, b);
  if (needs_grad({a, b})) {
    SavedTensor sa(a), sb(b);
    record_binary(
        "MulBackward", a, b, out, [sb](const Tensor& g) { return mul(g, sb.unpack()); },
        [sa](const Tensor& g) { return mul(g, sa.unpack()); });
  }
  return out;
}

// d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -out/b.
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel("div", BinaryOp::Div, a, b);
  if (needs_grad({a, b})) {
    SavedTensor sb(b), so(out);
    record_binary(
        "DivBackward", a, b, out, [sb](const Tensor& g) { return div(g, sb.unpack()); },
        [sb, so](const Tensor& g) { return neg(div(mul(g, so.unpack()), sb.unpack())); });
  }
  return out;
}

Tensor add(const Tensor& a, double b) { return affine("add", "AddScalarBackward", a, 1.0, b); }
Tensor add(double a, const Tensor& b) { return add(b, a); }
Tensor sub(const Tensor& a, double b) { return affine("sub", "SubScalarBackward", a, 1.0, -b); }
Tensor sub(double a, const Tensor& b) { return affine("sub", "RsubScalarBackward", b, -1.0, a); }
Tensor mul(const Tensor& a, double b) { return affine("mul", "MulScalarBackward", a, b, 0.0); }
Tensor mul(double a, const Tensor& b) { return mul(b, a); }
Tensor div(const Tensor& a, double b) { return affine("div", "DivScalarBackward", a, 1.0 / b, 0.0); }
Tensor div(double a, const Tensor& b) {
  check_f32("div", b, "second operand");
  return div(scalar_like(a, b), b);
}

// d(a^b)/da = b a^(b-1), d(a^b)/db = a^b log a.
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel("pow", BinaryOp::Pow, a, b);
  if (needs_grad({a, b})) {
    SavedTensor sa(a), sb(b), so(out);
    record_binary(
        "PowBackward", a, b, out,
        [sa, sb](const Tensor& g) {
          return mul(g, mul(sb.unpack(), pow(sa.unpack(), sub(sb.unpack(), 1.0))));
        },
        [sa, so](const Tensor& g) { return mul(g, mul(so.unpack(), log(sa.unpack()))); });
  }
  return out;
}

Tensor pow(const Tensor& a, double exponent) {
  Tensor out = unary_kernel("pow", UnaryOp::PowScalar, a, float(exponent));
  if (needs_grad({a})) {
    record_unary("PowScalarBackward", a, out, [sa = SavedTensor(a), exponent](const Tensor& g) {
      if (exponent == 0.0) return zeros_like(g);
      return mul(g, mul(pow(sa.unpack(), exponent - 1.0), exponent));
    });
  }
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return extremum("maximum", "MaximumBackward", BinaryOp::Maximum, a, b, true);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return extremum("minimum", "MinimumBackward", BinaryOp::Minimum, a, b, false);
}

// ---- unary ----
Tensor neg(const Tensor& x) { return affine("neg", "NegBackward", x, -1.0, 0.0); }

Tensor exp(const Tensor& x) {
  Tensor out = unary_kernel("exp", UnaryOp::Exp, x);
  if (needs_grad({x}))
    record_unary("ExpBackward", x, out,
                 [so = SavedTensor(out)](const Tensor& g) { return mul(g, so.unpack()); });
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = unary_kernel("log", UnaryOp::Log, x);
  if (needs_grad({x}))
    record_unary("LogBackward", x, out,
                 [sx = SavedTensor(x)](const Tensor& g) { return div(g, sx.unpack()); });
  return out;
}

// d sqrt(x) = 1 / (2 sqrt(x)).
Tensor sqrt(const Tensor& x) {
  Tensor out = unary_kernel("sqrt", UnaryOp::Sqrt, x);
  if (needs_grad({x}))
    record_unary("SqrtBackward", x, out,
                 [so = SavedTensor(out)](const Tensor& g) { return div(mul(g, 0.5), so.unpack()); });
  return out;
}

// d x^(-1/2) = -x^(-3/2) / 2 = -out³ / 2.
Tensor rsqrt(const Tensor& x) {
  Tensor out = unary_kernel("rsqrt", UnaryOp::Rsqrt, x);
  if (needs_grad({x}))
    record_unary("RsqrtBackward", x, out, [so = SavedTensor(out)](const Tensor& g) {
      return mul(g, mul(pow(so.unpack(), 3.0), -0.5));
    });
  return out;
}

// d (1/x) = -1/x² = -out².
Tensor reciprocal(const Tensor& x) {
  Tensor out = unary_kernel("reciprocal", UnaryOp::Reciprocal, x);
  if (needs_grad({x}))
    record_unary("ReciprocalBackward", x, out,
                 [so = SavedTensor(out)](const Tensor& g) { return neg(mul(g, square(so.unpack()))); });
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = unary_kernel("abs", UnaryOp::Abs, x);
  if (needs_grad({x}))
    record_unary("AbsBackward", x, out, [sx = SavedTensor(x)](const Tensor& g) {
      return mul(g, unary_kernel("abs_backward", UnaryOp::Sign, sx.unpack()));
    });
  return out;
}

Tensor square(const Tensor& x) {
  Tensor out = unary_kernel("square", UnaryOp::Square, x);
  if (needs_grad({x}))
    record_unary("SquareBackward", x, out,
                 [sx = SavedTensor(x)](const Tensor& g) { return mul(g, mul(sx.unpack(), 2.0)); });
  return out;
}

Tensor sin(const Tensor& x) {
  Tensor out = unary_kernel("sin", UnaryOp::Sin, x);
  if (needs_grad({x}))
    record_unary("SinBackward", x, out,
                 [sx = SavedTensor(x)](const Tensor& g) { return mul(g, cos(sx.unpack())); });
  return out;
}

Tensor cos(const Tensor& x) {
  Tensor out = unary_kernel("cos", UnaryOp::Cos, x);
  if (needs_grad({x}))
    record_unary("CosBackward", x, out,
                 [sx = SavedTensor(x)](const Tensor& g) { return neg(mul(g, sin(sx.unpack()))); });
  return out;
}

// One fused kernel each way: relu' from the saved output, g * (out > 0).
Tensor relu(const Tensor& x) {
  Tensor out = unary_kernel("relu", UnaryOp::Relu, x);
  if (needs_grad({x}))
    record_unary("ReluBackward", x, out, [so = SavedTensor(out)](const Tensor& g) {
      return binary_kernel("relu_backward", BinaryOp::ReluBackward, g, so.unpack());
    });
  return out;
}

// σ' = σ (1 - σ).
Tensor sigmoid(const Tensor& x) {
  Tensor out = unary_kernel("sigmoid", UnaryOp::Sigmoid, x);
  if (needs_grad({x}))
    record_unary("SigmoidBackward", x, out, [so = SavedTensor(out)](const Tensor& g) {
      const Tensor& y = so.unpack();
      return mul(g, mul(y, sub(1.0, y)));
    });
  return out;
}

// tanh' = 1 - tanh².
Tensor tanh(const Tensor& x) {
  Tensor out = unary_kernel("tanh", UnaryOp::Tanh, x);
  if (needs_grad({x}))
    record_unary("TanhBackward", x, out,
                 [so = SavedTensor(out)](const Tensor& g) { return mul(g, sub(1.0, square(so.unpack()))); });
  return out;
}

Tensor clamp(const Tensor& x, double min_value, double max_value) {
  KINDLING_CHECK(min_value <= max_value, ValueError, "clamp: min {} is greater than max {}", min_value,
                 max_value);
  Tensor out = unary_kernel("clamp", UnaryOp::Clamp, x, float(min_value), float(max_value));
  if (needs_grad({x}))
    record_unary("ClampBackward", x, out, [sx = SavedTensor(x), min_value, max_value](const Tensor& g) {
      const Tensor& v = sx.unpack();
      return mul(g, mul(ge(v, min_value), le(v, max_value)));
    });
  return out;
}

// ---- selection ----
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined("where", cond, "condition");
  check_f32("where", a, "first operand");
  check_f32("where", b, "second operand");
  detail::check_same_device("where", {&cond, &a, &b});
  const Tensor mask = cond.detach().to(DType::f32);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(mask.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = empty(shape, detail::f32_on(a.device()));
  if (out.numel() > 0)
    backend(a.device())
        .where(out, broadcast_view(mask, shape), broadcast_view(a, shape), broadcast_view(b, shape));
  if (needs_grad({a, b})) {
    SavedTensor sm(mask);
    // where(cond, g, 0) and where(cond, 0, g), each summed back to its operand's shape.
    record_binary(
        "WhereBackward", a, b, out,
        [sm](const Tensor& g) { return where(sm.unpack(), g, scalar_like(0.0, g)); },
        [sm](const Tensor& g) { return where(sm.unpack(), scalar_like(0.0, g), g); });
  }
  return out;
}

// ---- comparisons ----
#define KINDLING_COMPARISON(name, kind)                                                          \
  Tensor name(const Tensor& a, const Tensor& b) { return compare(#name, BinaryOp::kind, a, b); } \
  Tensor name(const Tensor& a, double b) {                                                       \
    detail::check_defined(#name, a, "first operand");                                            \
    return compare(#name, BinaryOp::kind, a, scalar_like(b, a));                                 \
  }
KINDLING_COMPARISON(eq, Eq)
KINDLING_COMPARISON(ne, Ne)
KINDLING_COMPARISON(lt, Lt)
KINDLING_COMPARISON(le, Le)
KINDLING_COMPARISON(gt, Gt)
KINDLING_COMPARISON(ge, Ge)
#undef KINDLING_COMPARISON

}  // namespace kindling
