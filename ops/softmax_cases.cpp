// Registry cases for softmax, log_softmax (last dim, other dims, non-contiguous) and one_hot.
#include "ops/case_inputs.h"
#include "ops/softmax.h"

namespace kindling {

void add_softmax_cases(OpCases& list) {
  using namespace cases;
  using In = std::vector<Tensor>;
  auto x34 = [](Generator& g) { return In{uniform(g, {3, 4}, -2.0, 2.0)}; };

  list.push_back({"softmax/last_dim", x34, [](const In& x) { return softmax(x[0], -1); }});
  list.push_back({"softmax/dim0", x34, [](const In& x) { return softmax(x[0], 0); }});
  list.push_back({"softmax/middle_dim",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3, 4}, -2.0, 2.0)};
                  },
                  [](const In& x) { return softmax(x[0], 1); }});
  list.push_back({"softmax/transposed",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 4}, -2.0, 2.0))};
                  },
                  [](const In& x) { return softmax(x[0], 1); }});
  list.push_back({"log_softmax/last_dim", x34, [](const In& x) { return log_softmax(x[0], 1); }});
  list.push_back({"log_softmax/dim0", x34, [](const In& x) { return log_softmax(x[0], 0); }});
  list.push_back({"log_softmax/sliced",
                  [](Generator& g) {
                    return In{every_other(uniform(g, {3, 5}, -2.0, 2.0))};
                  },
                  [](const In& x) { return log_softmax(x[0], -1); }});
  list.push_back({"log_softmax/single_class",
                  [](Generator& g) {
                    return In{uniform(g, {3, 1})};
                  },
                  [](const In& x) { return log_softmax(x[0], 1); }});
  list.push_back(forward_only(
      {"one_hot/basic",
       [](Generator&) {
         return In{from_vector<int64_t>({2, 0, 1, 2}, {4}, TensorOptions{}.with_dtype(DType::i64))};
       },
       [](const In& x) { return one_hot(x[0], 3); }}));
}

}  // namespace kindling
