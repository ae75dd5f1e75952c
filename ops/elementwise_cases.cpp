// Registry cases for the elementwise ops: broadcasting variants, size-1 and 0-d operands,
// non-contiguous inputs, and inputs kept away from each op's kinks and poles.
#include "ops/case_inputs.h"
#include "ops/elementwise.h"

namespace kindling {

void add_elementwise_cases(OpCases& list) {
  using namespace cases;
  using In = std::vector<Tensor>;

  // ---- binary arithmetic ----
  list.push_back({"add/same_shape",
                  [](Generator& g) {
                    return In{uniform(g, {3, 4}), uniform(g, {3, 4})};
                  },
                  [](const In& x) { return add(x[0], x[1]); }});
  list.push_back({"add/broadcast_row",
                  [](Generator& g) {
                    return In{uniform(g, {3, 4}), uniform(g, {4})};
                  },
                  [](const In& x) { return x[0] + x[1]; }});
  list.push_back({"add/broadcast_both",
                  [](Generator& g) {
                    return In{uniform(g, {3, 1}), uniform(g, {1, 4})};
                  },
                  [](const In& x) { return add(x[0], x[1]); }});
  list.push_back({"add/size1_dims",
                  [](Generator& g) {
                    return In{uniform(g, {2, 1, 3}), uniform(g, {1, 1, 3})};
                  },
                  [](const In& x) { return add(x[0], x[1]); }});
  list.push_back({"add/rank0",
                  [](Generator& g) {
                    return In{uniform(g, {}), uniform(g, {2, 3})};
                  },
                  [](const In& x) { return add(x[0], x[1]); }});
  list.push_back({"add/transposed",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 4})), uniform(g, {3, 4})};
                  },
                  [](const In& x) { return add(x[0], x[1]); }});
  list.push_back({"add/scalar",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3})};
                  },
                  [](const In& x) { return 1.5 + x[0]; }});
  list.push_back({"sub/broadcast",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}), uniform(g, {3})};
                  },
                  [](const In& x) { return x[0] - x[1]; }});
  list.push_back({"sub/scalar",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3})};
                  },
                  [](const In& x) { return x[0] - 0.5; }});
  list.push_back({"sub/scalar_left",
                  [](Generator& g) {
                    return In{every_other(uniform(g, {3, 2}))};
                  },
                  [](const In& x) { return 2.0 - x[0]; }});
  list.push_back({"mul/broadcast",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3, 4}), uniform(g, {3, 1})};
                  },
                  [](const In& x) { return x[0] * x[1]; }});
  list.push_back({"mul/same_input_twice", [](Generator& g) { return In{uniform(g, {5})}; },
                  [](const In& x) { return mul(x[0], x[0]); }});
  list.push_back({"mul/sliced",
                  [](Generator& g) {
                    return In{every_other(uniform(g, {3, 4})), transposed(uniform(g, {3, 4}))};
                  },
                  [](const In& x) { return mul(x[0], x[1]); }});
  list.push_back({"mul/scalar",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3})};
                  },
                  [](const In& x) { return x[0] * -3.0; }});
  list.push_back({"div/broadcast",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}), uniform(g, {3}, 0.5, 2.0)};
                  },
                  [](const In& x) { return x[0] / x[1]; }});
  list.push_back({"div/scalar",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3})};
                  },
                  [](const In& x) { return x[0] / 4.0; }});
  list.push_back({"div/scalar_left",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, 0.5, 2.0)};
                  },
                  [](const In& x) { return 2.0 / x[0]; }});
  list.push_back({"pow/scalar",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, 0.5, 2.0)};
                  },
                  [](const In& x) { return pow(x[0], 2.5); }});
  list.push_back({"pow/negative_exponent",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 2}, 0.5, 2.0))};
                  },
                  [](const In& x) { return pow(x[0], -1.5); }});
  list.push_back({"pow/tensor",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, 0.5, 2.0), uniform(g, {3}, -1.0, 2.0)};
                  },
                  [](const In& x) { return pow(x[0], x[1]); }});
  list.push_back({"maximum/broadcast",
                  [](Generator& g) {
                    Tensor b = uniform(g, {4});
                    return In{avoiding(g, {3, 4}, values_of(b), -1.0, 1.0, 0.1), b};
                  },
                  [](const In& x) { return maximum(x[0], x[1]); }});
  list.push_back({"minimum/broadcast",
                  [](Generator& g) {
                    Tensor b = uniform(g, {3, 1});
                    return In{avoiding(g, {2, 3, 4}, values_of(b), -1.0, 1.0, 0.1), b};
                  },
                  [](const In& x) { return minimum(x[0], x[1]); }});

  // ---- unary ----
  list.push_back({"neg/transposed",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 4}))};
                  },
                  [](const In& x) { return -x[0]; }});
  list.push_back({"exp/basic",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3})};
                  },
                  [](const In& x) { return exp(x[0]); }});
  list.push_back({"log/positive",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, 0.5, 2.0)};
                  },
                  [](const In& x) { return log(x[0]); }});
  list.push_back({"sqrt/positive",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, 0.5, 2.0)};
                  },
                  [](const In& x) { return sqrt(x[0]); }});
  list.push_back({"rsqrt/positive",
                  [](Generator& g) {
                    return In{every_other(uniform(g, {2, 3}, 0.5, 2.0))};
                  },
                  [](const In& x) { return rsqrt(x[0]); }});
  list.push_back({"reciprocal/positive",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, 0.5, 2.0)};
                  },
                  [](const In& x) { return reciprocal(x[0]); }});
  list.push_back({"abs/away_from_zero",
                  [](Generator& g) {
                    return In{avoiding(g, {3, 4}, {0.0})};
                  },
                  [](const In& x) { return abs(x[0]); }});
  list.push_back({"square/basic",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3})};
                  },
                  [](const In& x) { return square(x[0]); }});
  list.push_back({"sin/basic",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, -3.0, 3.0)};
                  },
                  [](const In& x) { return sin(x[0]); }});
  list.push_back({"cos/basic",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, -3.0, 3.0)};
                  },
                  [](const In& x) { return cos(x[0]); }});
  list.push_back({"relu/away_from_zero",
                  [](Generator& g) {
                    return In{avoiding(g, {3, 4}, {0.0})};
                  },
                  [](const In& x) { return relu(x[0]); }});
  list.push_back({"relu/transposed",
                  [](Generator& g) {
                    return In{transposed(avoiding(g, {2, 3, 4}, {0.0}))};
                  },
                  [](const In& x) { return relu(x[0]); }});
  list.push_back({"sigmoid/basic",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, -3.0, 3.0)};
                  },
                  [](const In& x) { return sigmoid(x[0]); }});
  list.push_back({"tanh/basic",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}, -2.0, 2.0)};
                  },
                  [](const In& x) { return tanh(x[0]); }});
  list.push_back({"clamp/both_sides",
                  [](Generator& g) {
                    return In{avoiding(g, {3, 4}, {-0.5, 0.5})};
                  },
                  [](const In& x) { return clamp(x[0], -0.5, 0.5); }});

  // ---- selection ----
  list.push_back({"where/broadcast",
                  [](Generator& g) {
                    return In{whole_numbers(g, {3, 1}, 2), uniform(g, {3, 4}), uniform(g, {4})};
                  },
                  [](const In& x) { return where(x[0], x[1], x[2]); }});
  list.push_back({"where/transposed",
                  [](Generator& g) {
                    return In{whole_numbers(g, {3, 4}, 2), transposed(uniform(g, {3, 4})), uniform(g, {})};
                  },
                  [](const In& x) { return where(x[0], x[1], x[2]); }});

  // ---- comparisons (forward only): whole numbers make some elements equal ----
  auto pair = [](Generator& g) { return In{whole_numbers(g, {3, 4}, 3), whole_numbers(g, {4}, 3)}; };
  list.push_back(forward_only({"eq/broadcast", pair, [](const In& x) { return eq(x[0], x[1]); }}));
  list.push_back(forward_only({"ne/broadcast", pair, [](const In& x) { return ne(x[0], x[1]); }}));
  list.push_back(forward_only({"lt/broadcast", pair, [](const In& x) { return lt(x[0], x[1]); }}));
  list.push_back(forward_only({"le/broadcast", pair, [](const In& x) { return le(x[0], x[1]); }}));
  list.push_back(forward_only({"gt/scalar", pair, [](const In& x) { return gt(x[0], 1.0); }}));
  list.push_back(
      forward_only({"ge/transposed",
                    [](Generator& g) {
                      return In{transposed(whole_numbers(g, {3, 4}, 3)), whole_numbers(g, {3, 4}, 3)};
                    },
                    [](const In& x) { return ge(x[0], x[1]); }}));
}

}  // namespace kindling
