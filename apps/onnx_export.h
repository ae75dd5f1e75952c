// The network of a kindling Module as an ONNX model (opset 13), for `kindling export --onnx`.
// Eval mode: BatchNorm is an ONNX BatchNormalization on the running statistics, Dropout the
// identity. Layers: Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d,
// AdaptiveAvgPool2d(1), Flatten, Linear, Dropout, and the zoo's blocks (CifarBasicBlock with its
// option-A shortcut, BasicBlock, Bottleneck) and networks (ResNet, Vgg).
#pragma once
#include "nn/module.h"

#include <cstdint>
#include <string>

namespace kindling::app {

struct OnnxExportOptions {
  int64_t channels = 0, height = 0, width = 0;  // the input image; the batch size is symbolic ("N")
  std::string graph_name = "kindling";
  int64_t opset = 13;
};

// The serialized ModelProto: input "input" f32 [N, C, H, W], output "logits" f32 [N, classes],
// weights as initializers under their state_dict names. Passes the ONNX checker before it is
// returned. Throws ValueError "ONNX export: layer <path> (<describe()>) is not supported" for a
// module it cannot express.
std::string export_onnx(const Module& model, const OnnxExportOptions& options);

}  // namespace kindling::app
