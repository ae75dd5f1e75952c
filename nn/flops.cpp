#include "nn/flops.h"

#include "core/autograd.h"
#include "core/rng.h"

#include <string>
#include <unordered_set>
#include <vector>

namespace kindling {

TrainingFlops training_flops(const Tensor& output) {
  TrainingFlops flops;
  std::vector<Node*> pending;
  std::unordered_set<Node*> seen;
  if (const std::shared_ptr<Node> root = output.grad_fn()) pending.push_back(root.get());
  while (!pending.empty()) {
    Node* node = pending.back();
    pending.pop_back();
    if (!seen.insert(node).second) continue;
    for (const Edge& edge : node->next_edges)
      if (edge.valid()) pending.push_back(edge.node.get());
    // Conv2dBackward and LinearBackward have inputs (x, weight, bias) and the output y; y [N,K,P,Q]
    // or [N,K] with weight [K, C/groups, R, S] or [K, C]: MACs = |y| · |weight| / K.
    const std::string name = node->name();
    if (name != "Conv2dBackward" && name != "LinearBackward") continue;
    const Edge& input = node->next_edges.at(0);
    const Edge& weight = node->next_edges.at(1);
    if (!weight.valid()) continue;
    const Shape& weight_shape = weight.node->outputs.at(weight.output_nr).shape;
    const double macs = double(shape_numel(node->outputs.at(0).shape)) *
                        double(shape_numel(weight_shape) / weight_shape.at(0));
    flops.forward += 2 * macs;
    flops.backward += 2 * macs * (input.valid() ? 2 : 1);
  }
  return flops;
}

TrainingFlops training_flops_per_image(Module& model, int64_t channels, int64_t image_size) {
  // Eval mode: batch statistics of one image could fail (a 1×1 map), and the FLOPs are the same.
  // Grad mode on, or nothing is recorded. Both are put back however the forward pass ends.
  struct Restore {
    Module& model;
    bool training = model.is_training(), grad_mode = GradMode::is_enabled();
    ~Restore() {
      model.train(training);
      GradMode::set_enabled(grad_mode);
    }
  } restore{model};
  model.eval();
  GradMode::set_enabled(true);
  Generator generator(0);
  const Tensor image = randn({1, channels, image_size, image_size}, {}, &generator).to(model.device());
  return training_flops(model.forward(image));
}

}  // namespace kindling
