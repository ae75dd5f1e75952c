#include "ops/registry.h"

namespace kindling {

const OpCases& all_op_cases() {
  static const OpCases cases = [] {
    OpCases all;
    // Each family adds its line here when it lands (ops helper: elementwise, reduce, shape,
    // matmul, softmax; CNN ops: conv, pool, batchnorm, dropout).
    return all;
  }();
  return cases;
}

}  // namespace kindling
