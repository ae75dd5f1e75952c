// Floating-point operations of a training step, counted from the autograd graph of a forward pass:
// what `kindling bench` divides by the step's time for GFLOP/s and its share of the CPU's peak.
// Counted: convolutions and linear layers, as multiply-adds times two (MACs = output elements ×
// weight elements per output channel). Forward: 2·MACs. Backward: 2·MACs for the weight gradient
// and 2·MACs for the input gradient, each only where that gradient is computed (the first layer's
// input needs none), so a step costs about 3× its forward. Not counted: BatchNorm, activations,
// pooling, residual adds, the loss and the optimizer (a few operations per element or parameter:
// under 2 % of a ResNet-20 step, docs/performance.md), nor layers whose weight needs no gradient
// (their shape is not in the graph).
#pragma once
#include "core/tensor.h"
#include "nn/module.h"

namespace kindling {

struct TrainingFlops {
  double forward = 0, backward = 0;
  double total() const { return forward + backward; }
};

// The convolutions and linear layers in the graph that produced `output` (each node once).
TrainingFlops training_flops(const Tensor& output);

// One [1, channels, image_size, image_size] image through `model` in eval mode (the mode is put
// back): the step's FLOPs per image. Runs a forward pass on the model's device.
TrainingFlops training_flops_per_image(Module& model, int64_t channels, int64_t image_size);

}  // namespace kindling
