// dropout on the CPU: the counter-based mask, reproducible from the generator's state, its edge
// cases and its gradient.
#include "core/rng.h"
#include "ops/dropout.h"
#include "tests/test_op_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("dropout draws the counter-based mask and is reproducible") {
  const int64_t n = 100000;
  Tensor x = ones({n});
  Generator gen(42);
  const uint64_t first = gen.state().counter;
  const std::vector<float> a = values_of(dropout(x, 0.3, true, gen));
  CHECK(gen.state().counter == first + uint64_t(n));
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = bits_to_unit_float(random_bits(42, first + uint64_t(i))) >= 0.3f;
    CHECK_MESSAGE(a[size_t(i)] == (keep ? 1.0f / 0.7f : 0.0f), "element ", i);
    kept += keep;
    if (a[size_t(i)] != (keep ? 1.0f / 0.7f : 0.0f)) break;
  }
  CHECK(std::fabs(double(kept) / double(n) - 0.7) < 0.01);
  // The same state gives the same mask; the advanced state a different one.
  Generator again(42);
  CHECK(values_of(dropout(x, 0.3, true, again)) == a);
  CHECK(values_of(dropout(x, 0.3, true, gen)) != a);
}

TEST_CASE("dropout edge cases and gradient") {
  Generator gen(7);
  Tensor x = randn({3, 4}, {}, &gen).set_requires_grad(true);
  CHECK(dropout(x, 0.0, true, gen).is_same(x));
  CHECK(dropout(x, 0.5, false, gen).is_same(x));
  const std::vector<float> zero = values_of(dropout(x, 1.0, true, gen));
  CHECK(zero == std::vector<float>(12, 0.0f));
  CHECK_THROWS_AS(dropout(x, 1.5, true, gen), ValueError);
  Generator g1(9);
  Tensor y = dropout(x, 0.5, true, g1);
  y.backward(ones({3, 4}));
  Generator g2(9);
  const std::vector<float> mask = values_of(dropout(ones({3, 4}), 0.5, true, g2));
  CHECK(values_of(x.grad()) == mask);
}
