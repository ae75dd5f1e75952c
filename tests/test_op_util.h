// Helpers of the op tests: a tensor's values, the largest difference of two value lists, and the
// finite-difference check of an op's gradient.
#pragma once
#include "core/autograd.h"
#include "core/rng.h"
#include "core/tensor.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <vector>

namespace kindling::test {

// Sets an environment variable for one scope (the CPU kernels read KINDLING_WINOGRAD at every call).
struct ScopedEnv {
  const char* name;
  ScopedEnv(const char* n, const char* value) : name(n) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name); }
};

inline std::vector<float> values_of(const Tensor& t) { return t.contiguous().to_vector<float>(); }

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
  return worst;
}

// sum(out * probe) for a fixed probe: a scalar whose gradient is probe pushed back through the op.
inline double probe_sum(const Tensor& out, const std::vector<float>& probe) {
  const std::vector<float> v = values_of(out);
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * probe[i];
  return s;
}

// Checks the analytic gradient of sum(f(inputs) * probe) with respect to inputs[which] against
// central differences in double-checked float32 (step 1e-2, tolerance relative to max(1, |g|)).
inline void check_gradient(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           std::vector<Tensor> inputs, size_t which, double tolerance = 2e-2) {
  Generator gen(99);
  Tensor out = f(inputs);
  std::vector<float> probe(size_t(out.numel()));
  for (float& v : probe) v = float(gen.uniform() * 2.0 - 1.0);
  out.backward(from_vector(probe, out.shape()));
  const std::vector<float> analytic = values_of(inputs[which].grad());
  std::vector<float> base = values_of(inputs[which]);
  const double step = 1e-2;
  for (size_t i = 0; i < base.size(); ++i) {
    std::vector<float> plus = base, minus = base;
    plus[i] += float(step);
    minus[i] -= float(step);
    std::vector<Tensor> in_plus = inputs, in_minus = inputs;
    in_plus[which] = from_vector(plus, inputs[which].shape());
    in_minus[which] = from_vector(minus, inputs[which].shape());
    NoGradGuard no_grad;
    const double numeric = (probe_sum(f(in_plus), probe) - probe_sum(f(in_minus), probe)) / (2 * step);
    INFO("input ", which, " element ", i, ": analytic ", analytic[i], ", numeric ", numeric);
    CHECK(std::fabs(analytic[i] - numeric) <= tolerance * std::max(1.0, std::fabs(numeric)));
  }
}

}  // namespace kindling::test
