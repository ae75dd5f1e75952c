#include "nn/vgg.h"

namespace kindling {

namespace {
constexpr int64_t kPool = 0;  // a max-pool in a configuration list; other entries are widths
const std::vector<int64_t> kVgg11 = {64,  kPool, 128,   kPool, 256, 256,  kPool,
                                     512, 512,   kPool, 512,   512, kPool};
const std::vector<int64_t> kVgg16 = {64,    64,  kPool, 128, 128,   kPool, 256, 256, 256,
                                     kPool, 512, 512,   512, kPool, 512,   512, 512, kPool};
}  // namespace

Vgg::Vgg(int64_t depth, int64_t in_channels, int64_t num_classes, int64_t input_size, Generator& generator)
    : name_(fmt::format("VGG{}-BN", depth)) {
  KINDLING_CHECK(depth == 11 || depth == 16, ValueError, "VGG: depth must be 11 or 16, got {}", depth);
  KINDLING_CHECK(in_channels >= 1 && num_classes >= 1 && input_size >= 1, ValueError,
                 "VGG-{}: in_channels ({}), num_classes ({}) and input_size ({}) must be >= 1", depth,
                 in_channels, num_classes, input_size);
  features_ = register_module("features", std::make_shared<Sequential>());
  int64_t channels = in_channels, side = input_size;
  for (int64_t width : depth == 11 ? kVgg11 : kVgg16) {
    if (width == kPool) {
      if (side >= 2) {
        features_->push_back(std::make_shared<MaxPool2d>(2, 2));
        side /= 2;
      }
      continue;
    }
    Conv2dOptions options;
    options.padding = 1;
    options.init = WeightInit::kaiming_normal_fan_out;
    features_->push_back(std::make_shared<Conv2d>(channels, width, 3, options, generator));
    features_->push_back(std::make_shared<BatchNorm2d>(width));
    features_->push_back(std::make_shared<ReLU>());
    channels = width;
  }
  avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  classifier_ = register_module(
      "classifier", std::make_shared<Linear>(channels, num_classes, true, WeightInit::normal_001, generator));
}

Tensor Vgg::forward(const Tensor& x) {
  KINDLING_CHECK(x.dim() == 4, ShapeError, "{}: expected input [N,C,H,W], got {}", name_, x.describe());
  return classifier_->forward(avgpool_->forward(features_->forward(x)).flatten(1));
}

}  // namespace kindling
