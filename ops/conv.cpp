// conv2d: shape checks, one backend call forward, and the backward (data, weight, bias) through the
// backend's conv2d_bwd_data / conv2d_bwd_weight. Registry cases at the end.
#include "ops/conv.h"

#include "core/autograd.h"
#include "ops/registry.h"

namespace kindling {

Conv2dParams conv2d_params(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride,
                           Size2 padding, Size2 dilation, int64_t groups) {
  KINDLING_CHECK(input.defined() && weight.defined(), ValueError, "conv2d: input and weight are required");
  KINDLING_CHECK(input.dtype() == DType::f32 && weight.dtype() == DType::f32, DTypeError,
                 "conv2d: expected f32 input and weight, got input {} and weight {}", input.describe(),
                 weight.describe());
  KINDLING_CHECK(input.dim() == 4, ShapeError, "conv2d: input must be [N,C,H,W], got {}", input.describe());
  KINDLING_CHECK(weight.dim() == 4, ShapeError, "conv2d: weight must be [K,C/groups,R,S], got {}",
                 weight.describe());
  KINDLING_CHECK(weight.device() == input.device(), DeviceError, "conv2d: input is {} but weight is {}",
                 input.describe(), weight.describe());
  KINDLING_CHECK(groups >= 1, ValueError, "conv2d: groups must be >= 1, got {}", groups);
  KINDLING_CHECK(stride.h >= 1 && stride.w >= 1 && dilation.h >= 1 && dilation.w >= 1 && padding.h >= 0 &&
                     padding.w >= 0,
                 ValueError, "conv2d: stride ({},{}) and dilation ({},{}) must be >= 1, padding ({},{}) >= 0",
                 stride.h, stride.w, dilation.h, dilation.w, padding.h, padding.w);
  Conv2dParams p;
  p.N = input.size(0), p.C = input.size(1), p.H = input.size(2), p.W = input.size(3);
  p.K = weight.size(0), p.R = weight.size(2), p.S = weight.size(3);
  KINDLING_CHECK(p.C % groups == 0 && p.K % groups == 0 && weight.size(1) * groups == p.C, ShapeError,
                 "conv2d: input {} and weight {} do not fit groups={} (need C = weight.size(1)*groups "
                 "and K divisible by groups)",
                 input.describe(), weight.describe(), groups);
  if (bias.defined()) {
    KINDLING_CHECK(bias.dtype() == DType::f32 && bias.dim() == 1 && bias.size(0) == p.K, ShapeError,
                   "conv2d: bias must be f32 [{}], got {}", p.K, bias.describe());
    KINDLING_CHECK(bias.device() == input.device(), DeviceError, "conv2d: input is {} but bias is {}",
                   input.describe(), bias.describe());
  }
  p.stride_h = stride.h, p.stride_w = stride.w, p.pad_h = padding.h, p.pad_w = padding.w;
  p.dil_h = dilation.h, p.dil_w = dilation.w, p.groups = groups;
  p.P = window_output_size(p.H, p.R, p.stride_h, p.pad_h, p.dil_h);
  p.Q = window_output_size(p.W, p.S, p.stride_w, p.pad_w, p.dil_w);
  KINDLING_CHECK(p.P >= 1 && p.Q >= 1, ShapeError,
                 "conv2d: the {}x{} window (dilation {},{}) does not fit input {} padded by ({},{})", p.R,
                 p.S, p.dil_h, p.dil_w, input.describe(), p.pad_h, p.pad_w);
  return p;
}

double conv2d_flops(const Conv2dParams& p) {
  return 2.0 * double(p.N) * double(p.K) * double(p.P * p.Q) * double(p.C / p.groups * p.R * p.S);
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride, Size2 padding,
              Size2 dilation, int64_t groups) {
  const Conv2dParams p = conv2d_params(input, weight, bias, stride, padding, dilation, groups);
  const Tensor x = input.contiguous();
  const Tensor w = weight.contiguous();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Backend& be = backend(input.device());
  Tensor y = empty({p.N, p.K, p.P, p.Q}, TensorOptions{}.with_device(input.device()));
  if (y.numel() > 0) be.conv2d_fwd(p, y, x, w, b);
  if (needs_grad({x, w, b})) {
    SavedTensor saved_x(x), saved_w(w);
    const bool has_bias = b.defined();
    record("Conv2dBackward", {x, w, b}, y, [p, saved_x, saved_w, has_bias](const GradOutputs& g) {
      std::vector<Tensor> grads(3);
      const Tensor dy = g[0].contiguous();
      const Tensor& x = saved_x.unpack();
      const Tensor& w = saved_w.unpack();
      Backend& be = backend(dy.device());
      if (g.needs(0)) {
        grads[0] = empty(x.shape(), TensorOptions{}.with_device(x.device()));
        be.conv2d_bwd_data(p, grads[0], dy, w);
      }
      if (g.needs(1) || (has_bias && g.needs(2))) {
        Tensor dw = empty(w.shape(), TensorOptions{}.with_device(w.device()));
        Tensor dbias =
            has_bias && g.needs(2) ? empty({p.K}, TensorOptions{}.with_device(w.device())) : Tensor();
        be.conv2d_bwd_weight(p, dw, dbias, x, dy);
        if (g.needs(1)) grads[1] = dw;
        if (dbias.defined()) grads[2] = dbias;
      }
      return grads;
    });
  }
  return y;
}

// ---- registry cases: small geometries covering every option, inputs normal(0,1) ----
void add_conv_cases(OpCases& cases) {
  struct Geometry {
    const char* name;
    Shape x, w;
    Size2 stride, padding, dilation;
    int64_t groups;
    bool bias;
  };
  const Geometry geometries[] = {
      {"3x3_pad1_bias", {2, 3, 5, 5}, {4, 3, 3, 3}, 1, 1, 1, 1, true},
      {"3x3_stride2_pad1", {2, 3, 6, 5}, {4, 3, 3, 3}, 2, 1, 1, 1, false},
      {"nonsquare_stride2x1_pad0x2", {1, 2, 6, 5}, {3, 2, 3, 2}, Size2{2, 1}, Size2{0, 2}, 1, 1, true},
      {"dilation2_pad2", {2, 2, 7, 6}, {3, 2, 3, 3}, 1, 2, 2, 1, true},
      {"groups2", {2, 4, 5, 5}, {6, 2, 3, 3}, 1, 1, 1, 2, true},
      {"depthwise_stride2", {1, 3, 6, 6}, {3, 1, 3, 3}, 2, 1, 1, 3, false},
      {"1x1", {2, 4, 3, 4}, {5, 4, 1, 1}, 1, 0, 1, 1, true},
      {"1x1_stride2", {2, 4, 5, 4}, {3, 4, 1, 1}, 2, 0, 1, 1, false},
      {"1x1_groups2", {2, 4, 3, 3}, {4, 2, 1, 1}, 1, 0, 1, 2, true},
  };
  for (const Geometry& geo : geometries) {
    OpCase c;
    c.name = std::string("conv2d/") + geo.name;
    c.make_inputs = [geo](Generator& gen) {
      std::vector<Tensor> inputs{randn(geo.x, {}, &gen).set_requires_grad(true),
                                 randn(geo.w, {}, &gen).set_requires_grad(true)};
      if (geo.bias) inputs.push_back(randn({geo.w[0]}, {}, &gen).set_requires_grad(true));
      return inputs;
    };
    c.forward = [geo](const std::vector<Tensor>& in) {
      return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), geo.stride, geo.padding, geo.dilation,
                    geo.groups);
    };
    cases.push_back(std::move(c));
  }
}

}  // namespace kindling
