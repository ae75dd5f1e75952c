#include "ops/case_inputs.h"

#include "core/autograd.h"

#include <cmath>
#include <numeric>

namespace kindling::cases {
namespace {

Tensor as_leaf(const Tensor& t, bool grad) {
  Tensor leaf = t.detach();
  if (grad) leaf.set_requires_grad(true);
  return leaf;
}

Tensor leaf_from(const std::vector<float>& values, const Shape& shape, bool grad) {
  return as_leaf(from_vector(values, shape), grad);
}

}  // namespace

Tensor uniform(Generator& gen, const Shape& shape, double low, double high, bool grad) {
  return avoiding(gen, shape, {}, low, high, 0.0, grad);
}

Tensor avoiding(Generator& gen, const Shape& shape, const std::vector<double>& kinks, double low, double high,
                double margin, bool grad) {
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (float& v : values) {
    bool near_kink = true;
    while (near_kink) {
      v = float(low + (high - low) * gen.uniform());
      near_kink = false;
      for (double k : kinks) near_kink = near_kink || std::fabs(v - k) < margin;
    }
  }
  return leaf_from(values, shape, grad);
}

Tensor distinct(Generator& gen, const Shape& shape, bool grad) {
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(gen.randint(i + 1))]);
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[size_t(i)] = 0.1f * float(order[size_t(i)] - n / 2);
  return leaf_from(values, shape, grad);
}

std::vector<double> values_of(const Tensor& t) {
  const std::vector<float> values = t.to_vector<float>();
  return {values.begin(), values.end()};
}

Tensor whole_numbers(Generator& gen, const Shape& shape, int64_t n) {
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (float& v : values) v = float(gen.randint(n));
  return leaf_from(values, shape, false);
}

Tensor transposed(const Tensor& t) {
  NoGradGuard no_grad;
  const Tensor stored = t.detach().transpose(-1, -2).contiguous();
  return as_leaf(stored.transpose(-1, -2), t.requires_grad());
}

Tensor every_other(const Tensor& t, int64_t dim) {
  NoGradGuard no_grad;
  const int64_t d = wrap_dim(dim, t.dim(), "every_other");
  Shape longer = t.shape();
  longer[d] *= 2;
  Tensor buffer = full(longer, 7.0);  // the elements in between must never be read
  Tensor view = buffer.slice(d, 0, longer[d], 2);
  view.copy_(t.detach());
  return as_leaf(view, t.requires_grad());
}

OpCase forward_only(OpCase c) {
  c.differentiable = false;
  return c;
}

}  // namespace kindling::cases
