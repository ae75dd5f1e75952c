// CPU elementwise kernels. out is contiguous f32; inputs are strided views already broadcast to
// out's shape (stride 0 on broadcast dims). The op is chosen outside the loop, so each inner loop
// is a plain strided loop the compiler vectorises when the strides are 1.
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/strided.h"

#include <cmath>

namespace kindling {
namespace {

void check_f32(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    KINDLING_CHECK(t->dtype() == DType::f32, DTypeError, "{}: expected f32, got {}", op, t->describe());
}

template <typename F>
void map_unary(const Tensor& out, const Tensor& in, F f) {
  float* y = out.data<float>();
  const float* x = in.data<float>();
  cpu::for_each_run<2>(out.shape(), {&out.strides(), &in.strides()},
                       [&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
                         float* yo = y + off[0];
                         const float* xo = x + off[1];
                         if (st[0] == 1 && st[1] == 1) {
                           for (int64_t i = 0; i < n; ++i) yo[i] = f(xo[i]);
                         } else {
                           for (int64_t i = 0; i < n; ++i) yo[i * st[0]] = f(xo[i * st[1]]);
                         }
                       });
}

template <typename F>
void map_binary(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  float* y = out.data<float>();
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  cpu::for_each_run<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()},
                       [&](std::array<int64_t, 3> off, int64_t n, std::array<int64_t, 3> st) {
                         float* yo = y + off[0];
                         const float* ao = pa + off[1];
                         const float* bo = pb + off[2];
                         // Dense runs, and dense runs against one broadcast value (a stride-0 operand), get
                         // loops without index arithmetic that the compiler vectorises.
                         if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
                           for (int64_t i = 0; i < n; ++i) yo[i] = f(ao[i], bo[i]);
                         } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
                           const float bv = bo[0];
                           for (int64_t i = 0; i < n; ++i) yo[i] = f(ao[i], bv);
                         } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                           const float av = ao[0];
                           for (int64_t i = 0; i < n; ++i) yo[i] = f(av, bo[i]);
                         } else {
                           for (int64_t i = 0; i < n; ++i) yo[i * st[0]] = f(ao[i * st[1]], bo[i * st[2]]);
                         }
                       });
}

}  // namespace

// out = op(in), with alpha/beta as UnaryOp documents.
void CpuBackend::unary(UnaryOp op, const Tensor& out, const Tensor& in, float alpha, float beta) {
  check_f32("unary", {&out, &in});
  switch (op) {
    case UnaryOp::Neg:
      return map_unary(out, in, [](float x) { return -x; });
    case UnaryOp::Exp:
      return map_unary(out, in, [](float x) { return std::exp(x); });
    case UnaryOp::Log:
      return map_unary(out, in, [](float x) { return std::log(x); });
    case UnaryOp::Sqrt:
      return map_unary(out, in, [](float x) { return std::sqrt(x); });
    case UnaryOp::Rsqrt:
      return map_unary(out, in, [](float x) { return 1.0f / std::sqrt(x); });
    case UnaryOp::Abs:
      return map_unary(out, in, [](float x) { return std::fabs(x); });
    case UnaryOp::Sign:
      return map_unary(out, in, [](float x) { return float((x > 0) - (x < 0)); });
    case UnaryOp::Relu:
      return map_unary(out, in, [](float x) { return x > 0.0f ? x : 0.0f; });
    case UnaryOp::Sigmoid:
      return map_unary(out, in, [](float x) { return 1.0f / (1.0f + std::exp(-x)); });
    case UnaryOp::Tanh:
      return map_unary(out, in, [](float x) { return std::tanh(x); });
    case UnaryOp::Sin:
      return map_unary(out, in, [](float x) { return std::sin(x); });
    case UnaryOp::Cos:
      return map_unary(out, in, [](float x) { return std::cos(x); });
    case UnaryOp::Square:
      return map_unary(out, in, [](float x) { return x * x; });
    case UnaryOp::Reciprocal:
      return map_unary(out, in, [](float x) { return 1.0f / x; });
    case UnaryOp::PowScalar:
      return map_unary(out, in, [alpha](float x) { return std::pow(x, alpha); });
    case UnaryOp::Clamp:
      return map_unary(out, in, [alpha, beta](float x) { return std::fmin(std::fmax(x, alpha), beta); });
    case UnaryOp::Affine:
      return map_unary(out, in, [alpha, beta](float x) { return alpha * x + beta; });
  }
}

// out = a op b, both broadcast to out's shape.
void CpuBackend::binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  check_f32("binary", {&out, &a, &b});
  switch (op) {
    case BinaryOp::Add:
      return map_binary(out, a, b, [](float x, float y) { return x + y; });
    case BinaryOp::Sub:
      return map_binary(out, a, b, [](float x, float y) { return x - y; });
    case BinaryOp::Mul:
      return map_binary(out, a, b, [](float x, float y) { return x * y; });
    case BinaryOp::Div:
      return map_binary(out, a, b, [](float x, float y) { return x / y; });
    case BinaryOp::Pow:
      return map_binary(out, a, b, [](float x, float y) { return std::pow(x, y); });
    case BinaryOp::Maximum:
      return map_binary(out, a, b, [](float x, float y) { return std::fmax(x, y); });
    case BinaryOp::Minimum:
      return map_binary(out, a, b, [](float x, float y) { return std::fmin(x, y); });
    case BinaryOp::Eq:
      return map_binary(out, a, b, [](float x, float y) { return float(x == y); });
    case BinaryOp::Ne:
      return map_binary(out, a, b, [](float x, float y) { return float(x != y); });
    case BinaryOp::Lt:
      return map_binary(out, a, b, [](float x, float y) { return float(x < y); });
    case BinaryOp::Le:
      return map_binary(out, a, b, [](float x, float y) { return float(x <= y); });
    case BinaryOp::Gt:
      return map_binary(out, a, b, [](float x, float y) { return float(x > y); });
    case BinaryOp::Ge:
      return map_binary(out, a, b, [](float x, float y) { return float(x >= y); });
    case BinaryOp::ReluBackward:
      return map_binary(out, a, b, [](float g, float y) { return y > 0.0f ? g : 0.0f; });
  }
}

// out = cond != 0 ? a : b, all broadcast to out's shape.
void CpuBackend::where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_f32("where", {&out, &cond, &a, &b});
  float* y = out.data<float>();
  const float* pc = cond.data<float>();
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  cpu::for_each_run<4>(out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
                       [&](std::array<int64_t, 4> off, int64_t n, std::array<int64_t, 4> st) {
                         float* yo = y + off[0];
                         const float *co = pc + off[1], *ao = pa + off[2], *bo = pb + off[3];
                         if (st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1) {
                           for (int64_t i = 0; i < n; ++i) yo[i] = co[i] != 0.0f ? ao[i] : bo[i];
                         } else {
                           for (int64_t i = 0; i < n; ++i)
                             yo[i * st[0]] = co[i * st[1]] != 0.0f ? ao[i * st[2]] : bo[i * st[3]];
                         }
                       });
}

}  // namespace kindling
