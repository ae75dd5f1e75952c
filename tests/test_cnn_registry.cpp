// The op registry's cases of the CNN family (conv, pooling, batch norm, dropout): a deterministic
// forward and a finite-difference gradient check, as tests/test_gradcheck.cpp walks every op.
#include "core/autograd.h"
#include "ops/registry.h"
#include "tests/test_op_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("CNN registry cases pass a finite-difference gradient check") {
  OpCases cases;
  add_conv_cases(cases);
  add_pool_cases(cases);
  add_batchnorm_cases(cases);
  add_dropout_cases(cases);
  CHECK(cases.size() >= 20);
  for (const OpCase& c : cases) {
    Generator gen(11);
    const std::vector<Tensor> inputs = c.make_inputs(gen);
    INFO("case ", c.name);
    // The forward is deterministic: two calls agree exactly.
    {
      NoGradGuard no_grad;
      CHECK(values_of(c.forward(inputs)) == values_of(c.forward(inputs)));
    }
    for (size_t which = 0; which < inputs.size(); ++which) {
      if (!inputs[which].requires_grad()) continue;
      std::vector<Tensor> fresh;
      for (const Tensor& t : inputs) fresh.push_back(t.detach().clone().set_requires_grad(t.requires_grad()));
      check_gradient(c.forward, fresh, which, c.tolerance);
    }
  }
}
