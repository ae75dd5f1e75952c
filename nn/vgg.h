// VGG-11 and VGG-16 with batch normalisation (Simonyan & Zisserman 2015, configurations A and D),
// with torchvision's names: features.<i> holds Conv2d(3×3, padding 1) - BatchNorm2d - ReLU triples
// and MaxPool2d(2); then global average pooling and one Linear `classifier` (512 -> classes), the
// usual head for CIFAR-sized inputs. A max-pool that would shrink the feature map below 1×1 is
// left out, so 28×28 inputs (MNIST) keep four of the five pools. Initialisation as torchvision:
// convolutions N(0, 2/fan_out) with bias 0, BatchNorm 1 and 0, the classifier N(0, 0.01²), bias 0.
#pragma once
#include "nn/layers.h"

namespace kindling {

class Vgg final : public Module {
 public:
  // depth 11 or 16; square inputs of side input_size.
  Vgg(int64_t depth, int64_t in_channels, int64_t num_classes, int64_t input_size,
      Generator& generator = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return name_; }

 private:
  std::string name_;
  std::shared_ptr<Sequential> features_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<Linear> classifier_;
};

}  // namespace kindling
