#include "ops/registry.h"

namespace kindling {

const OpCases& all_op_cases() {
  static const OpCases cases = [] {
    OpCases all;
    // Each family adds its line here when it lands (ops helper: elementwise, reduce, shape,
    // matmul, softmax; CNN ops: conv, pool, batchnorm, dropout).
    add_elementwise_cases(all);
    add_reduce_cases(all);
    add_shape_cases(all);
    add_matmul_cases(all);
    add_softmax_cases(all);
    add_conv_cases(all);
    add_pool_cases(all);
    add_batchnorm_cases(all);
    add_dropout_cases(all);
    add_batchnorm_relu_cases(all);
    return all;
  }();
  return cases;
}

}  // namespace kindling
