// CUDA elementwise kernels. out is contiguous f32; inputs are strided views already broadcast to
// out's shape (stride 0 on broadcast dims). One kernel per arity: the op is a warp-uniform switch
// inside it, which costs nothing beside the memory traffic these kernels are bound by.
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/strided.cuh"

namespace kindling {
namespace {

void check_f32(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    KINDLING_CHECK(t->dtype() == DType::f32, DTypeError, "{}: expected f32, got {}", op, t->describe());
}

// The same formulas as ops/cpu/elementwise.cpp, with CUDA's f32 maths functions.
struct UnaryFn {
  UnaryOp op;
  float alpha, beta;
  __device__ float operator()(float x) const {
    switch (op) {
      case UnaryOp::Neg:
        return -x;
      case UnaryOp::Exp:
        return expf(x);
      case UnaryOp::Log:
        return logf(x);
      case UnaryOp::Sqrt:
        return sqrtf(x);
      case UnaryOp::Rsqrt:
        return 1.0f / sqrtf(x);
      case UnaryOp::Abs:
        return fabsf(x);
      case UnaryOp::Sign:
        return float((x > 0) - (x < 0));
      case UnaryOp::Relu:
        return x > 0.0f ? x : 0.0f;
      case UnaryOp::Sigmoid:
        return 1.0f / (1.0f + expf(-x));
      case UnaryOp::Tanh:
        return tanhf(x);
      case UnaryOp::Sin:
        return sinf(x);
      case UnaryOp::Cos:
        return cosf(x);
      case UnaryOp::Square:
        return x * x;
      case UnaryOp::Reciprocal:
        return 1.0f / x;
      case UnaryOp::PowScalar:
        return powf(x, alpha);
      case UnaryOp::Clamp:
        return fminf(fmaxf(x, alpha), beta);
      case UnaryOp::Affine:
        return alpha * x + beta;
    }
    return x;  // unreachable: every op is listed above
  }
};

struct BinaryFn {
  BinaryOp op;
  __device__ float operator()(float x, float y) const {
    switch (op) {
      case BinaryOp::Add:
        return x + y;
      case BinaryOp::Sub:
        return x - y;
      case BinaryOp::Mul:
        return x * y;
      case BinaryOp::Div:
        return x / y;
      case BinaryOp::Pow:
        return powf(x, y);
      case BinaryOp::Maximum:
        return fmaxf(x, y);
      case BinaryOp::Minimum:
        return fminf(x, y);
      case BinaryOp::Eq:
        return float(x == y);
      case BinaryOp::Ne:
        return float(x != y);
      case BinaryOp::Lt:
        return float(x < y);
      case BinaryOp::Le:
        return float(x <= y);
      case BinaryOp::Gt:
        return float(x > y);
      case BinaryOp::Ge:
        return float(x >= y);
      case BinaryOp::ReluBackward:
        return y > 0.0f ? x : 0.0f;
    }
    return x;  // unreachable
  }
};

struct MapUnary {
  float* y;
  const float* x;
  UnaryFn fn;
  __device__ void operator()(const int64_t (&off)[2]) const { y[off[0]] = fn(x[off[1]]); }
};

struct MapBinary {
  float* y;
  const float* a;
  const float* b;
  BinaryFn fn;
  __device__ void operator()(const int64_t (&off)[3]) const { y[off[0]] = fn(a[off[1]], b[off[2]]); }
};

struct MapWhere {
  float* y;
  const float* cond;
  const float* a;
  const float* b;
  __device__ void operator()(const int64_t (&off)[4]) const {
    y[off[0]] = cond[off[1]] != 0.0f ? a[off[2]] : b[off[3]];
  }
};

}  // namespace

// out = op(in), with alpha/beta as UnaryOp documents.
void CudaBackend::unary(UnaryOp op, const Tensor& out, const Tensor& in, float alpha, float beta) {
  check_f32("unary", {&out, &in});
  cuda::strided_walk<2>("unary", out.shape(), {&out.strides(), &in.strides()},
                        MapUnary{out.data<float>(), in.data<float>(), UnaryFn{op, alpha, beta}});
}

// out = a op b, both broadcast to out's shape.
void CudaBackend::binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  check_f32("binary", {&out, &a, &b});
  cuda::strided_walk<3>("binary", out.shape(), {&out.strides(), &a.strides(), &b.strides()},
                        MapBinary{out.data<float>(), a.data<float>(), b.data<float>(), BinaryFn{op}});
}

// out = cond != 0 ? a : b, all broadcast to out's shape.
void CudaBackend::where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_f32("where", {&out, &cond, &a, &b});
  cuda::strided_walk<4>("where", out.shape(), {&out.strides(), &cond.strides(), &a.strides(), &b.strides()},
                        MapWhere{out.data<float>(), cond.data<float>(), a.data<float>(), b.data<float>()});
}

}  // namespace kindling
