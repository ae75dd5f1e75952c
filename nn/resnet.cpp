#include "nn/resnet.h"

#include "ops/elementwise.h"
#include "ops/shape.h"

namespace kindling {

namespace {
Conv2dOptions conv_options(int64_t stride, int64_t padding) {
  Conv2dOptions options;
  options.stride = stride;
  options.padding = padding;
  options.bias = false;
  options.init = WeightInit::kaiming_normal_fan_out;
  return options;
}
std::shared_ptr<Conv2d> conv3x3(int64_t in, int64_t out, int64_t stride, Generator& generator) {
  return std::make_shared<Conv2d>(in, out, 3, conv_options(stride, 1), generator);
}
std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out, int64_t stride, Generator& generator) {
  return std::make_shared<Conv2d>(in, out, 1, conv_options(stride, 0), generator);
}
}  // namespace

// ---- CifarBasicBlock ----
CifarBasicBlock::CifarBasicBlock(int64_t in_planes, int64_t planes, int64_t stride, Generator& generator)
    : stride_(stride), pad_before_((planes - in_planes) / 2), pad_after_(planes - in_planes - pad_before_) {
  KINDLING_CHECK(planes >= in_planes, ValueError,
                 "CifarBasicBlock: option-A shortcuts can only add channels ({} -> {})", in_planes, planes);
  conv1_ = register_module("conv1", conv3x3(in_planes, planes, stride, generator));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
  conv2_ = register_module("conv2", conv3x3(planes, planes, 1, generator));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
}

Tensor CifarBasicBlock::forward(const Tensor& x) {
  const Tensor out = conv2_->forward(bn1_->forward_relu(conv1_->forward(x)));
  Tensor shortcut = x;
  if (stride_ != 1) shortcut = x.slice(2, 0, x.size(2), stride_).slice(3, 0, x.size(3), stride_);
  if (pad_before_ + pad_after_ > 0) {
    // Zero channels on both sides of the subsampled input: [N, before + C + after, H', W'].
    const TensorOptions options = TensorOptions{}.with_device(x.device());
    const int64_t N = shortcut.size(0), H = shortcut.size(2), W = shortcut.size(3);
    shortcut =
        cat({zeros({N, pad_before_, H, W}, options), shortcut, zeros({N, pad_after_, H, W}, options)}, 1);
  }
  return bn2_->forward_relu(out, shortcut);
}

// ---- ResidualBlock ----
ResidualBlock::ResidualBlock(bool bottleneck, int64_t in_planes, int64_t planes, int64_t stride,
                             Generator& generator)
    : bottleneck_(bottleneck) {
  const int64_t out_planes = planes * expansion(bottleneck);
  auto add_stage = [&](std::shared_ptr<Conv2d> conv, int64_t channels) {
    const std::string index = std::to_string(stages_.size() + 1);
    register_module("conv" + index, conv);
    stages_.emplace_back(conv, register_module("bn" + index, std::make_shared<BatchNorm2d>(channels)));
  };
  if (bottleneck) {
    add_stage(conv1x1(in_planes, planes, 1, generator), planes);
    add_stage(conv3x3(planes, planes, stride, generator), planes);
    add_stage(conv1x1(planes, out_planes, 1, generator), out_planes);
  } else {
    add_stage(conv3x3(in_planes, planes, stride, generator), planes);
    add_stage(conv3x3(planes, planes, 1, generator), planes);
  }
  if (stride != 1 || in_planes != out_planes) {
    auto downsample = std::make_shared<Sequential>();
    downsample->push_back(conv1x1(in_planes, out_planes, stride, generator));
    downsample->push_back(std::make_shared<BatchNorm2d>(out_planes));
    downsample_ = register_module("downsample", downsample);
  }
}

Tensor ResidualBlock::forward(const Tensor& x) {
  Tensor out = x;
  for (size_t i = 0; i + 1 < stages_.size(); ++i)
    out = stages_[i].second->forward_relu(stages_[i].first->forward(out));
  // The last ReLU comes after the addition.
  out = stages_.back().first->forward(out);
  return stages_.back().second->forward_relu(out, downsample_ ? downsample_->forward(x) : x);
}

// ---- ResNet ----
std::shared_ptr<ResNet> ResNet::cifar(int64_t depth, int64_t in_channels, int64_t num_classes,
                                      Generator& generator) {
  KINDLING_CHECK(depth >= 8 && (depth - 2) % 6 == 0, ValueError,
                 "CIFAR ResNet: depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110), got {}", depth);
  KINDLING_CHECK(in_channels >= 1 && num_classes >= 1, ValueError,
                 "CIFAR ResNet: in_channels ({}) and num_classes ({}) must be >= 1", in_channels,
                 num_classes);
  std::shared_ptr<ResNet> net(new ResNet(fmt::format("ResNet{} (CIFAR)", depth)));
  auto& seq = net->sequence_;
  seq.push_back(net->register_module("conv1", conv3x3(in_channels, 16, 1, generator)));
  seq.push_back(net->register_module("bn1", std::make_shared<BatchNorm2d>(16)));
  seq.push_back(net->register_module("relu", std::make_shared<ReLU>()));
  const int64_t blocks = (depth - 2) / 6;
  int64_t in_planes = 16;
  const int64_t widths[3] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage) {
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      layer->push_back(std::make_shared<CifarBasicBlock>(in_planes, widths[stage], stride, generator));
      in_planes = widths[stage];
    }
    seq.push_back(net->register_module(fmt::format("layer{}", stage + 1), layer));
  }
  seq.push_back(net->register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1)));
  seq.push_back(std::make_shared<Flatten>(1));
  seq.push_back(net->register_module(
      "fc", std::make_shared<Linear>(64, num_classes, true, WeightInit::pytorch_default, generator)));
  return net;
}

std::shared_ptr<ResNet> ResNet::imagenet_style(int64_t depth, int64_t in_channels, int64_t num_classes,
                                               int64_t input_size, Generator& generator) {
  int64_t blocks[4];
  bool bottleneck = false;
  if (depth == 18)
    blocks[0] = 2, blocks[1] = 2, blocks[2] = 2, blocks[3] = 2;
  else if (depth == 34)
    blocks[0] = 3, blocks[1] = 4, blocks[2] = 6, blocks[3] = 3;
  else if (depth == 50)
    blocks[0] = 3, blocks[1] = 4, blocks[2] = 6, blocks[3] = 3, bottleneck = true;
  else
    throw ValueError(fmt::format("ResNet: depth must be 18, 34 or 50, got {}", depth));
  KINDLING_CHECK(in_channels >= 1 && num_classes >= 1 && input_size >= 1, ValueError,
                 "ResNet-{}: in_channels ({}), num_classes ({}) and input_size ({}) must be >= 1", depth,
                 in_channels, num_classes, input_size);
  const bool small_input = input_size <= 32;
  std::shared_ptr<ResNet> net(new ResNet(fmt::format("ResNet{}{}", depth, small_input ? " (3x3 stem)" : "")));
  auto& seq = net->sequence_;
  if (small_input) {
    seq.push_back(net->register_module("conv1", conv3x3(in_channels, 64, 1, generator)));
  } else {
    seq.push_back(net->register_module(
        "conv1", std::make_shared<Conv2d>(in_channels, 64, 7, conv_options(2, 3), generator)));
  }
  seq.push_back(net->register_module("bn1", std::make_shared<BatchNorm2d>(64)));
  seq.push_back(net->register_module("relu", std::make_shared<ReLU>()));
  if (!small_input) seq.push_back(net->register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1)));
  int64_t in_planes = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = int64_t(64) << stage;
    auto layer = std::make_shared<Sequential>();
    for (int64_t b = 0; b < blocks[stage]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      layer->push_back(std::make_shared<ResidualBlock>(bottleneck, in_planes, planes, stride, generator));
      in_planes = planes * ResidualBlock::expansion(bottleneck);
    }
    seq.push_back(net->register_module(fmt::format("layer{}", stage + 1), layer));
  }
  seq.push_back(net->register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1)));
  seq.push_back(std::make_shared<Flatten>(1));
  seq.push_back(net->register_module(
      "fc", std::make_shared<Linear>(in_planes, num_classes, true, WeightInit::pytorch_default, generator)));
  return net;
}

Tensor ResNet::forward(const Tensor& x) {
  KINDLING_CHECK(x.dim() == 4, ShapeError, "{}: expected input [N,C,H,W], got {}", name_, x.describe());
  std::vector<Module*> modules;
  for (const auto& module : sequence_) modules.push_back(module.get());
  return forward_in_order(modules, x);
}

}  // namespace kindling
