// Registry cases for the reductions: all dims, one dim, several dims that are and are not one
// block of the layout, keepdim, negative dims, size-1 dims and non-contiguous inputs. Max/min
// inputs have distinct values 0.1 apart, so no tie sits within the finite-difference step.
#include "ops/case_inputs.h"
#include "ops/reduce.h"

namespace kindling {

void add_reduce_cases(OpCases& list) {
  using namespace cases;
  using In = std::vector<Tensor>;
  auto x234 = [](Generator& g) { return In{uniform(g, {2, 3, 4})}; };
  auto distinct234 = [](Generator& g) { return In{distinct(g, {2, 3, 4})}; };

  list.push_back({"sum/all", x234, [](const In& x) { return sum(x[0]); }});
  list.push_back({"sum/dim0", x234, [](const In& x) { return sum(x[0], 0); }});
  list.push_back({"sum/dim1_keepdim", x234, [](const In& x) { return sum(x[0], 1, true); }});
  list.push_back({"sum/negative_dim", x234, [](const In& x) { return sum(x[0], -1); }});
  list.push_back({"sum/dims_block", x234, [](const In& x) { return sum(x[0], {1, 2}); }});
  list.push_back({"sum/dims_split", x234, [](const In& x) { return sum(x[0], {0, 2}, true); }});
  list.push_back({"sum/size1_dim",
                  [](Generator& g) {
                    return In{uniform(g, {3, 1, 4})};
                  },
                  [](const In& x) {
                    return sum(x[0], {0, 1});
                  }});
  list.push_back({"sum/transposed",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {4, 3}))};
                  },
                  [](const In& x) { return sum(x[0], 1); }});
  list.push_back(
      {"sum/rank0", [](Generator& g) { return In{uniform(g, {})}; }, [](const In& x) { return sum(x[0]); }});
  list.push_back({"mean/all", x234, [](const In& x) { return mean(x[0]); }});
  list.push_back({"mean/dim_keepdim", x234, [](const In& x) { return mean(x[0], 1, true); }});
  list.push_back({"mean/sliced",
                  [](Generator& g) {
                    return In{every_other(uniform(g, {3, 4}))};
                  },
                  [](const In& x) { return mean(x[0], {0}); }});
  list.push_back({"sum_squares/all",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 4}))};
                  },
                  [](const In& x) { return sum_squares(x[0]); }});
  list.push_back({"max/all", distinct234, [](const In& x) { return max(x[0]); }});
  list.push_back({"max/dim1", distinct234, [](const In& x) { return max(x[0], 1); }});
  list.push_back({"max/dim0_keepdim", distinct234, [](const In& x) { return max(x[0], 0, true); }});
  list.push_back({"max/transposed",
                  [](Generator& g) {
                    return In{transposed(distinct(g, {3, 5}))};
                  },
                  [](const In& x) { return max(x[0], -1); }});
  list.push_back({"min/all", distinct234, [](const In& x) { return min(x[0]); }});
  list.push_back({"min/dim2", distinct234, [](const In& x) { return min(x[0], 2); }});
  list.push_back(
      forward_only({"argmax/all", distinct234, [](const In& x) { return argmax(x[0]).to(DType::f32); }}));
  list.push_back(
      forward_only({"argmax/dim1", distinct234, [](const In& x) { return argmax(x[0], 1).to(DType::f32); }}));
  list.push_back(forward_only({"argmin/dim0_keepdim", distinct234,
                               [](const In& x) { return argmin(x[0], 0, true).to(DType::f32); }}));
  list.push_back(
      forward_only({"argmin/all", distinct234, [](const In& x) { return argmin(x[0]).to(DType::f32); }}));
}

}  // namespace kindling
