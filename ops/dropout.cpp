// dropout: draws the mask with one backend call, multiplies, and keeps the mask for backward.
// Registry case at the end.
#include "ops/dropout.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "ops/registry.h"

namespace kindling {

Tensor dropout(const Tensor& input, double p, bool training, Generator& generator) {
  KINDLING_CHECK(input.defined() && input.dtype() == DType::f32, DTypeError,
                 "dropout: input must be f32, got {}", input.describe());
  KINDLING_CHECK(p >= 0.0 && p <= 1.0, ValueError, "dropout: p must be in [0, 1], got {}", p);
  if (!training || p == 0.0) return input;
  const TensorOptions options = TensorOptions{}.with_device(input.device());
  Backend& be = backend(input.device());
  Tensor mask = empty(input.shape(), options);
  const uint64_t offset = generator.reserve(uint64_t(input.numel()));
  if (mask.numel() > 0) be.dropout_mask(mask, float(p), generator.state().seed, offset);
  Tensor y = empty(input.shape(), options);
  if (y.numel() > 0) be.binary(BinaryOp::Mul, y, input, mask);
  if (needs_grad({input})) {
    record("DropoutBackward", {input}, y, [mask](const GradOutputs& g) {
      Tensor dx = empty(mask.shape(), TensorOptions{}.with_device(mask.device()));
      if (dx.numel() > 0) backend(dx.device()).binary(BinaryOp::Mul, dx, g[0], mask);
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

// ---- registry case: a fixed seed per call, so the forward is a deterministic function of x ----
void add_dropout_cases(OpCases& cases) {
  OpCase c;
  c.name = "dropout/p0.3";
  c.make_inputs = [](Generator& gen) {
    return std::vector<Tensor>{randn({4, 5}, {}, &gen).set_requires_grad(true)};
  };
  c.forward = [](const std::vector<Tensor>& in) {
    Generator mask_generator(1234);
    return dropout(in[0], 0.3, true, mask_generator);
  };
  cases.push_back(std::move(c));
}

}  // namespace kindling
