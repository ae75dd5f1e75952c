// Pooling front doors: geometry checks, one backend call forward, the backward through the
// backend's pooling kernels; adaptive average pooling as a plain average pool when the windows are
// equal, else as a GEMM with the averaging matrix. Registry cases at the end.
#include "ops/pool.h"

#include "core/autograd.h"
#include "ops/registry.h"

#include <algorithm>
#include <numeric>

namespace kindling {
namespace {

void check_input(const char* op, const Tensor& input) {
  KINDLING_CHECK(input.defined(), ValueError, "{}: input is an undefined tensor", op);
  KINDLING_CHECK(input.dtype() == DType::f32, DTypeError, "{}: input must be f32, got {}", op,
                 input.describe());
  KINDLING_CHECK(input.dim() == 4, ShapeError, "{}: input must be [N,C,H,W], got {}", op, input.describe());
}

TensorOptions on(Device device) { return TensorOptions{}.with_device(device); }

}  // namespace

Pool2dParams pool2d_params(const char* op, const Tensor& input, Size2 kernel, Size2 stride, Size2 padding,
                           bool count_include_pad) {
  check_input(op, input);
  KINDLING_CHECK(kernel.h >= 1 && kernel.w >= 1 && stride.h >= 1 && stride.w >= 1, ValueError,
                 "{}: kernel ({},{}) and stride ({},{}) must be >= 1", op, kernel.h, kernel.w, stride.h,
                 stride.w);
  KINDLING_CHECK(padding.h >= 0 && padding.w >= 0 && 2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w,
                 ValueError, "{}: padding ({},{}) must be between 0 and half the kernel ({},{})", op,
                 padding.h, padding.w, kernel.h, kernel.w);
  Pool2dParams p;
  p.N = input.size(0), p.C = input.size(1), p.H = input.size(2), p.W = input.size(3);
  p.R = kernel.h, p.S = kernel.w;
  p.stride_h = stride.h, p.stride_w = stride.w, p.pad_h = padding.h, p.pad_w = padding.w;
  p.count_include_pad = count_include_pad;
  p.P = window_output_size(p.H, p.R, p.stride_h, p.pad_h);
  p.Q = window_output_size(p.W, p.S, p.stride_w, p.pad_w);
  KINDLING_CHECK(p.P >= 1 && p.Q >= 1, ShapeError,
                 "{}: the {}x{} window does not fit input {} padded by ({},{})", op, p.R, p.S,
                 input.describe(), p.pad_h, p.pad_w);
  return p;
}

Tensor max_pool2d(const Tensor& input, Size2 kernel, std::optional<Size2> stride, Size2 padding) {
  const Pool2dParams p = pool2d_params("max_pool2d", input, kernel, stride.value_or(kernel), padding);
  const Tensor x = input.contiguous();
  Tensor y = empty({p.N, p.C, p.P, p.Q}, on(x.device()));
  Tensor indices = empty({p.N, p.C, p.P, p.Q}, on(x.device()).with_dtype(DType::i64));
  if (y.numel() > 0) backend(x.device()).max_pool2d_fwd(p, y, indices, x);
  if (needs_grad({x})) {
    record("MaxPool2dBackward", {x}, y, [p, indices](const GradOutputs& g) {
      Tensor dx = empty({p.N, p.C, p.H, p.W}, on(indices.device()));
      backend(dx.device()).max_pool2d_bwd(p, dx, g[0].contiguous(), indices);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

Tensor avg_pool2d(const Tensor& input, Size2 kernel, std::optional<Size2> stride, Size2 padding,
                  bool count_include_pad) {
  const Pool2dParams p =
      pool2d_params("avg_pool2d", input, kernel, stride.value_or(kernel), padding, count_include_pad);
  const Tensor x = input.contiguous();
  Tensor y = empty({p.N, p.C, p.P, p.Q}, on(x.device()));
  if (y.numel() > 0) backend(x.device()).avg_pool2d_fwd(p, y, x);
  if (needs_grad({x})) {
    record("AvgPool2dBackward", {x}, y, [p, device = x.device()](const GradOutputs& g) {
      Tensor dx = empty({p.N, p.C, p.H, p.W}, on(device));
      backend(device).avg_pool2d_bwd(p, dx, g[0].contiguous());
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

namespace {

// PyTorch's adaptive window along one axis: [floor(i*in/out), ceil((i+1)*in/out)).
int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return i * in / out; }
int64_t adaptive_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

// A [H*W, oh*ow] with A[h*W + w, i*ow + j] = 1/|window(i,j)| when (h, w) lies in window (i, j).
Tensor averaging_matrix(int64_t H, int64_t W, int64_t oh, int64_t ow, Device device) {
  std::vector<float> a(size_t(H * W * oh * ow), 0.0f);
  for (int64_t i = 0; i < oh; ++i)
    for (int64_t j = 0; j < ow; ++j) {
      const int64_t h0 = adaptive_start(i, H, oh), h1 = adaptive_end(i, H, oh);
      const int64_t w0 = adaptive_start(j, W, ow), w1 = adaptive_end(j, W, ow);
      const float weight = 1.0f / float((h1 - h0) * (w1 - w0));
      for (int64_t h = h0; h < h1; ++h)
        for (int64_t w = w0; w < w1; ++w) a[size_t((h * W + w) * oh * ow + i * ow + j)] = weight;
    }
  return from_vector(a, {H * W, oh * ow}, on(device));
}

}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size) {
  check_input("adaptive_avg_pool2d", input);
  const int64_t oh = output_size.h, ow = output_size.w;
  KINDLING_CHECK(oh >= 1 && ow >= 1, ValueError, "adaptive_avg_pool2d: output size ({},{}) must be >= 1", oh,
                 ow);
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  KINDLING_CHECK(H >= 1 && W >= 1, ShapeError, "adaptive_avg_pool2d: input {} has an empty plane",
                 input.describe());
  if (H % oh == 0 && W % ow == 0) return avg_pool2d(input, {H / oh, W / ow}, Size2{H / oh, W / ow}, 0);

  // Unequal windows: y [N*C, oh*ow] = x [N*C, H*W] · A, and dx = dy · Aᵀ.
  const Tensor x = input.contiguous();
  const Tensor averaging = averaging_matrix(H, W, oh, ow, x.device());
  const int64_t rows = N * C, plane = H * W, cells = oh * ow;
  Tensor y = empty({N, C, oh, ow}, on(x.device()));
  if (rows > 0)
    backend(x.device())
        .gemm(false, false, rows, cells, plane, 1.0f, x.data<float>(), plane, 0, averaging.data<float>(),
              cells, 0, 0.0f, y.data<float>(), cells, 0, 1);
  if (needs_grad({x})) {
    record("AdaptiveAvgPool2dBackward", {x}, y, [averaging, shape = x.shape()](const GradOutputs& g) {
      const Tensor dy = g[0].contiguous();
      Tensor dx = empty(shape, on(dy.device()));
      const int64_t rows = shape[0] * shape[1], plane = shape[2] * shape[3], cells = averaging.size(1);
      if (rows > 0)
        backend(dy.device())
            .gemm(false, true, rows, plane, cells, 1.0f, dy.data<float>(), cells, 0, averaging.data<float>(),
                  cells, 0, 0.0f, dx.data<float>(), plane, 0, 1);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

// ---- registry cases ----
namespace {

// Distinct values 0.1 apart in a random order, so no two window elements are within a
// finite-difference step of each other and max pooling has no kink nearby.
Tensor distinct_values(const Shape& shape, Generator& gen) {
  std::vector<int64_t> order(size_t(shape_numel(shape)));
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[size_t(gen.randint(int64_t(i)))]);
  std::vector<float> values(order.size());
  for (size_t i = 0; i < order.size(); ++i) values[i] = 0.1f * float(order[i]) - 0.05f * float(order.size());
  return from_vector(values, shape).set_requires_grad(true);
}

void add_case(OpCases& cases, std::string name, Shape shape, bool distinct,
              std::function<Tensor(const Tensor&)> op) {
  OpCase c;
  c.name = std::move(name);
  c.make_inputs = [shape, distinct](Generator& gen) {
    return std::vector<Tensor>{distinct ? distinct_values(shape, gen)
                                        : randn(shape, {}, &gen).set_requires_grad(true)};
  };
  c.forward = [op](const std::vector<Tensor>& in) { return op(in[0]); };
  cases.push_back(std::move(c));
}

}  // namespace

void add_pool_cases(OpCases& cases) {
  add_case(cases, "max_pool2d/2x2", {2, 2, 4, 6}, true, [](const Tensor& x) { return max_pool2d(x, 2); });
  add_case(cases, "max_pool2d/3x3_stride2_pad1", {1, 2, 7, 6}, true,
           [](const Tensor& x) { return max_pool2d(x, 3, 2, 1); });
  add_case(cases, "max_pool2d/overlapping_3x2_stride1", {1, 2, 5, 5}, true, [](const Tensor& x) {
    return max_pool2d(x, {3, 2}, 1);
  });
  add_case(cases, "avg_pool2d/2x2", {2, 2, 4, 6}, false, [](const Tensor& x) { return avg_pool2d(x, 2); });
  add_case(cases, "avg_pool2d/3x3_stride2_pad1", {1, 2, 7, 6}, false,
           [](const Tensor& x) { return avg_pool2d(x, 3, 2, 1); });
  add_case(cases, "avg_pool2d/3x3_pad1_exclude_pad", {1, 2, 5, 4}, false,
           [](const Tensor& x) { return avg_pool2d(x, 3, 1, 1, false); });
  add_case(cases, "adaptive_avg_pool2d/global", {2, 3, 4, 5}, false,
           [](const Tensor& x) { return adaptive_avg_pool2d(x, 1); });
  add_case(cases, "adaptive_avg_pool2d/uneven_3x2", {2, 2, 5, 7}, false, [](const Tensor& x) {
    return adaptive_avg_pool2d(x, {3, 2});
  });
}

}  // namespace kindling
