// Registry cases for views and the free shape functions: each view of a contiguous and of a
// non-contiguous input, -1 inference, negative dims and indices, stride-0 expand, size-1 dims.
#include "ops/case_inputs.h"
#include "ops/shape.h"

namespace kindling {

void add_shape_cases(OpCases& list) {
  using namespace cases;
  using In = std::vector<Tensor>;
  auto x234 = [](Generator& g) { return In{uniform(g, {2, 3, 4})}; };
  auto transposed34 = [](Generator& g) { return In{transposed(uniform(g, {3, 4}))}; };

  list.push_back({"reshape/view_path", x234, [](const In& x) { return x[0].reshape({6, 4}); }});
  list.push_back({"reshape/copy_path", transposed34, [](const In& x) { return x[0].reshape({12}); }});
  list.push_back({"view/infer", x234, [](const In& x) { return x[0].view({-1, 12}); }});
  list.push_back({"view/split_transposed_dim", transposed34, [](const In& x) {
                    return x[0].view({3, 2, 2});
                  }});
  list.push_back({"flatten/middle", x234, [](const In& x) { return x[0].flatten(1); }});
  list.push_back({"permute/3d", x234, [](const In& x) { return x[0].permute({2, 0, 1}); }});
  list.push_back({"transpose/negative_dims", x234, [](const In& x) { return x[0].transpose(-1, 0); }});
  list.push_back({"transpose/t", transposed34, [](const In& x) { return x[0].t(); }});
  list.push_back({"slice/step2", x234, [](const In& x) { return x[0].slice(2, 0, 4, 2); }});
  list.push_back({"slice/negative_bounds", transposed34, [](const In& x) { return x[0].slice(1, -3, -1); }});
  list.push_back({"narrow/dim1", x234, [](const In& x) { return x[0].narrow(1, 1, 2); }});
  list.push_back({"select/negative_index", x234, [](const In& x) { return x[0].select(1, -1); }});
  list.push_back({"select/transposed", transposed34, [](const In& x) { return x[0].select(0, 2); }});
  list.push_back({"expand/size1_dims",
                  [](Generator& g) {
                    return In{uniform(g, {3, 1})};
                  },
                  [](const In& x) {
                    return x[0].expand({2, 3, 4});
                  }});
  list.push_back({"expand/keep_dims",
                  [](Generator& g) {
                    return In{uniform(g, {1, 4})};
                  },
                  [](const In& x) {
                    return x[0].expand({3, -1});
                  }});
  list.push_back({"squeeze/all",
                  [](Generator& g) {
                    return In{uniform(g, {3, 1, 4, 1})};
                  },
                  [](const In& x) { return x[0].squeeze(); }});
  list.push_back({"squeeze/dim",
                  [](Generator& g) {
                    return In{uniform(g, {3, 1, 4})};
                  },
                  [](const In& x) { return x[0].squeeze(1); }});
  list.push_back({"unsqueeze/last", transposed34, [](const In& x) { return x[0].unsqueeze(-1); }});
  list.push_back({"unsqueeze/first", x234, [](const In& x) { return x[0].unsqueeze(0); }});
  list.push_back({"contiguous/transposed", transposed34, [](const In& x) { return x[0].contiguous(); }});
  list.push_back({"cat/dim0",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}), uniform(g, {1, 3}), uniform(g, {3, 3})};
                  },
                  [](const In& x) { return cat(x, 0); }});
  list.push_back({"cat/dim1_mixed_layouts",
                  [](Generator& g) {
                    return In{transposed(uniform(g, {3, 4})), every_other(uniform(g, {3, 2}))};
                  },
                  [](const In& x) { return cat(x, -1); }});
  list.push_back({"stack/dim0",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}), transposed(uniform(g, {2, 3}))};
                  },
                  [](const In& x) { return stack(x, 0); }});
  list.push_back({"stack/last_dim",
                  [](Generator& g) {
                    return In{uniform(g, {2, 3}), uniform(g, {2, 3}), uniform(g, {2, 3})};
                  },
                  [](const In& x) { return stack(x, -1); }});
  list.push_back({"sum_to/leading_and_size1", x234, [](const In& x) { return sum_to(x[0], {3, 1}); }});
}

}  // namespace kindling
