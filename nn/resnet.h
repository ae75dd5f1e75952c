// Residual networks.
//  - CIFAR ResNet-(6n+2) of He et al. 2016 (§4.2): a 3×3 stem with 16 channels, three stages of n
//    basic blocks with 16, 32 and 64 channels (stride 2 at the start of stages 2 and 3), global
//    average pooling and a linear classifier. Shortcuts are identities; where the shape changes
//    they are "option A": x[:, :, ::2, ::2] with zero channels padded on both sides (no
//    parameters). ResNet-20 at 3 channels and 10 classes has 269,722 parameters.
//  - ImageNet-style ResNet-18/34 (basic blocks) and ResNet-50 (bottlenecks, stride on the 3×3 as
//    torchvision), with torchvision's names (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0,
//    fc). For inputs of at most 32×32 the stem is a 3×3 stride-1 convolution without max-pool (the
//    usual CIFAR variant); larger inputs get the 7×7 stride-2 stem and a 3×3 stride-2 max-pool.
// Initialisation as torchvision: convolutions N(0, 2/fan_out), BatchNorm weight 1 and bias 0, the
// classifier PyTorch's default; all drawn from `generator` on the CPU.
#pragma once
#include "nn/layers.h"

namespace kindling {

// conv3x3-BN-ReLU-conv3x3-BN, plus the option-A shortcut, then ReLU.
class CifarBasicBlock final : public Module {
 public:
  CifarBasicBlock(int64_t in_planes, int64_t planes, int64_t stride, Generator& generator);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "CifarBasicBlock"; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  int64_t stride_, pad_before_, pad_after_;
};

// torchvision's BasicBlock (expansion 1) or Bottleneck (expansion 4, 1×1-3×3-1×1), with a
// conv1×1-BN `downsample` shortcut when the shape changes.
class ResidualBlock final : public Module {
 public:
  ResidualBlock(bool bottleneck, int64_t in_planes, int64_t planes, int64_t stride, Generator& generator);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return bottleneck_ ? "Bottleneck" : "BasicBlock"; }
  static int64_t expansion(bool bottleneck) { return bottleneck ? 4 : 1; }

 private:
  bool bottleneck_;
  std::vector<std::pair<std::shared_ptr<Conv2d>, std::shared_ptr<BatchNorm2d>>> stages_;
  std::shared_ptr<Module> downsample_;  // null: identity shortcut
};

// The network around the blocks: stem, stages, global average pool, classifier.
class ResNet final : public Module {
 public:
  // CIFAR ResNet of `depth` = 6n+2 (20, 32, 44, 56, 110, ...).
  static std::shared_ptr<ResNet> cifar(int64_t depth, int64_t in_channels, int64_t num_classes,
                                       Generator& generator = default_generator());
  // ResNet-18, -34 or -50 for square inputs of side input_size.
  static std::shared_ptr<ResNet> imagenet_style(int64_t depth, int64_t in_channels, int64_t num_classes,
                                                int64_t input_size,
                                                Generator& generator = default_generator());

  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return name_; }

 private:
  explicit ResNet(std::string name) : name_(std::move(name)) {}
  std::string name_;
  std::vector<std::shared_ptr<Module>> sequence_;  // stem, stages, pool, flatten, fc, in order
};

}  // namespace kindling
