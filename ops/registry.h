// The op registry: every differentiable op lists cases that make valid inputs. Three walks use it,
// as ggml's harness does: the finite-difference gradient check (tests/test_gradcheck.cpp), CPU/CUDA
// parity (tests/test_cuda_parity.cpp), and op-level timing (`kindling bench`). An op with no case
// here is not done.
#pragma once
#include "core/rng.h"
#include "core/tensor.h"

#include <functional>
#include <string>
#include <vector>

namespace kindling {

struct OpCase {
  std::string name;  // "<op>/<variant>", e.g. "conv2d/stride2_pad1"
  // Makes the inputs on the CPU. Tensors whose gradient is checked have requires_grad set; values
  // are drawn away from kinks (relu at 0, max ties, abs at 0) by the case itself.
  std::function<std::vector<Tensor>(Generator&)> make_inputs;
  // Runs the op on inputs (any device) and returns one f32 output.
  std::function<Tensor(const std::vector<Tensor>&)> forward;
  double fd_step = 1e-2;       // central-difference step (float32 needs a large one)
  double tolerance = 2e-2;     // max |analytic - numeric| / max(1, |numeric|)
  bool differentiable = true;  // false: forward-only (comparisons, argmax, one_hot)
};
using OpCases = std::vector<OpCase>;

// Every registered case, in a fixed order.
const OpCases& all_op_cases();

// One function per op family, defined beside the family's ops (ops/<stem>.cpp or ops/<stem>_cases.cpp).
void add_elementwise_cases(OpCases& cases);
void add_reduce_cases(OpCases& cases);
void add_shape_cases(OpCases& cases);
void add_matmul_cases(OpCases& cases);
void add_softmax_cases(OpCases& cases);
void add_conv_cases(OpCases& cases);
void add_pool_cases(OpCases& cases);
void add_batchnorm_cases(OpCases& cases);
void add_dropout_cases(OpCases& cases);
void add_batchnorm_relu_cases(OpCases& cases);

}  // namespace kindling
