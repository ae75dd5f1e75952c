// Registry cases for matmul and linear: every operand layout gemm reads in place (row-major,
// transposed), one it must copy (a row-sliced view), batches, shared operands, size-1 dims.
#include "ops/case_inputs.h"
#include "ops/matmul.h"

namespace kindling {

void add_matmul_cases(OpCases& list) {
  using namespace cases;
  using In = std::vector<Tensor>;
  auto mm = [](const In& x) { return matmul(x[0], x[1]); };

  list.push_back({"matmul/2d", [](Generator& g) { return In{uniform(g, {3, 4}), uniform(g, {4, 5})}; }, mm});
  list.push_back({"matmul/transposed_a",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 4})), uniform(g, {4, 5})};
                  },
                  mm});
  list.push_back({"matmul/transposed_b",
                  [](Generator& g) {
                    return In{uniform(g, {3, 4}), transposed(uniform(g, {4, 5}))};
                  },
                  mm});
  list.push_back({"matmul/both_transposed",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 4})), transposed(uniform(g, {4, 2}))};
                  },
                  mm});
  list.push_back({"matmul/sliced_copy",
                  [](Generator& g) {
                    return In{uniform(g, {3, 4}), every_other(uniform(g, {4, 2}), 1)};
                  },
                  mm});
  list.push_back({"matmul/row_vector",
                  [](Generator& g) {
                    return In{uniform(g, {1, 4}), uniform(g, {4, 3})};
                  },
                  mm});
  list.push_back({"matmul/column_result",
                  [](Generator& g) {
                    return In{uniform(g, {3, 4}), transposed(uniform(g, {4, 1}))};
                  },
                  mm});
  list.push_back({"matmul/batched",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3, 4}), uniform(g, {2, 4, 2})};
                  },
                  mm});
  list.push_back({"matmul/batched_transposed",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {2, 3, 4})), transposed(uniform(g, {2, 4, 2}))};
                  },
                  mm});
  list.push_back({"matmul/shared_b",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3, 4}), uniform(g, {4, 2})};
                  },
                  mm});
  list.push_back({"matmul/shared_b_transposed_a",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {2, 3, 4})), transposed(uniform(g, {4, 2}))};
                  },
                  mm});
  list.push_back({"matmul/shared_a",
                  [](Generator& g) {
                    return In{uniform(g, {3, 4}), uniform(g, {2, 4, 2})};
                  },
                  mm});
  list.push_back({"matmul/batch1_broadcast",
                  [](Generator& g) {
                    return In{uniform(g, {1, 3, 4}), uniform(g, {2, 4, 2})};
                  },
                  mm});
  list.push_back({"linear/bias",
                  [](Generator& g) {
                    return In{uniform(g, {4, 3}), uniform(g, {5, 3}), uniform(g, {5})};
                  },
                  [](const In& x) { return linear(x[0], x[1], x[2]); }});
  list.push_back({"linear/no_bias",
                  [](Generator& g) {
                    return In{uniform(g, {4, 3}), uniform(g, {2, 3})};
                  },
                  [](const In& x) { return linear(x[0], x[1]); }});
  list.push_back(
      {"linear/transposed_input",
       [](Generator& g) {
         return In{transposed(uniform(g, {4, 3})), transposed(uniform(g, {5, 3})), uniform(g, {5})};
       },
       [](const In& x) { return linear(x[0], x[1], x[2]); }});
}

}  // namespace kindling
