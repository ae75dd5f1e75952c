#include "nn/layers.h"

#include "nn/init.h"
#include "ops/batchnorm.h"
#include "ops/conv.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/pool.h"

#include <cmath>
#include <cstdlib>

namespace kindling {

namespace {
std::string size2_str(Size2 s) {
  return s.h == s.w ? std::to_string(s.h) : fmt::format("({}, {})", s.h, s.w);
}

void check_positive(int64_t value, const char* layer, const char* what) {
  KINDLING_CHECK(value >= 1, ValueError, "{}: {} must be >= 1, got {}", layer, what, value);
}

// Draws weight (and bias, when defined) as `init` says.
void initialise(WeightInit init, const Tensor& weight, const Tensor& bias, Generator& generator) {
  switch (init) {
    case WeightInit::pytorch_default:
      init::pytorch_default_(weight, bias, generator);
      return;
    case WeightInit::kaiming_normal_fan_out:
      init::kaiming_normal_(weight, init::FanMode::fan_out, 0.0, generator);
      break;
    case WeightInit::normal_001:
      init::normal_(weight, 0.0, 0.01, generator);
      break;
  }
  if (bias.defined()) init::constant_(bias, 0.0);
}

// KINDLING_FUSE_BN_RELU=0 turns the fusion off in the layers made afterwards (to compare with it);
// unset, empty or 1: on.
bool fuse_relu_by_default() {
  const char* env = std::getenv("KINDLING_FUSE_BN_RELU");
  const std::string value = env ? env : "";
  KINDLING_CHECK(value.empty() || value == "0" || value == "1", ValueError,
                 "KINDLING_FUSE_BN_RELU must be 0 or 1, got '{}'", value);
  return value != "0";
}
}  // namespace

Tensor forward_in_order(const std::vector<Module*>& modules, const Tensor& x) {
  Tensor y = x;
  for (size_t i = 0; i < modules.size(); ++i) {
    auto* batchnorm = dynamic_cast<BatchNorm2d*>(modules[i]);
    if (batchnorm && i + 1 < modules.size() && dynamic_cast<ReLU*>(modules[i + 1])) {
      y = batchnorm->forward_relu(y);
      ++i;
    } else {
      y = modules[i]->forward(y);
    }
  }
  return y;
}

// ---- Sequential ----
Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(children().size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  std::vector<Module*> modules;
  for (const auto& [name, module] : children()) modules.push_back(module.get());
  return forward_in_order(modules, x);
}

// ---- Linear ----
Linear::Linear(int64_t in_features, int64_t out_features, bool bias, WeightInit init, Generator& generator)
    : in_features_(in_features), out_features_(out_features) {
  check_positive(in_features, "Linear", "in_features");
  check_positive(out_features, "Linear", "out_features");
  weight_ = &register_parameter("weight", empty({out_features, in_features}));
  bias_ = bias ? &register_parameter("bias", empty({out_features})) : &no_bias_;
  initialise(init, *weight_, *bias_, generator);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, *weight_, *bias_); }

std::string Linear::describe() const {
  return fmt::format("Linear(in_features={}, out_features={}, bias={})", in_features_, out_features_,
                     bias_->defined());
}

// ---- Conv2d ----
Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions options,
               Generator& generator)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size), options_(options) {
  check_positive(in_channels, "Conv2d", "in_channels");
  check_positive(out_channels, "Conv2d", "out_channels");
  check_positive(options.groups, "Conv2d", "groups");
  KINDLING_CHECK(in_channels % options.groups == 0 && out_channels % options.groups == 0, ValueError,
                 "Conv2d: groups {} must divide in_channels {} and out_channels {}", options.groups,
                 in_channels, out_channels);
  weight_ = &register_parameter(
      "weight", empty({out_channels, in_channels / options.groups, kernel_size.h, kernel_size.w}));
  bias_ = options.bias ? &register_parameter("bias", empty({out_channels})) : &no_bias_;
  initialise(options.init, *weight_, *bias_, generator);
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, *weight_, *bias_, options_.stride, options_.padding, options_.dilation, options_.groups);
}

std::string Conv2d::describe() const {
  std::string text = fmt::format("Conv2d({}, {}, kernel_size={}, stride={}", in_channels_, out_channels_,
                                 size2_str(kernel_size_), size2_str(options_.stride));
  if (options_.padding.h || options_.padding.w) text += ", padding=" + size2_str(options_.padding);
  if (options_.dilation.h != 1 || options_.dilation.w != 1)
    text += ", dilation=" + size2_str(options_.dilation);
  if (options_.groups != 1) text += fmt::format(", groups={}", options_.groups);
  if (!options_.bias) text += ", bias=False";
  return text + ")";
}

// ---- BatchNorm2d ----
BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum)
    : num_features_(num_features), eps_(eps), momentum_(momentum), fuse_relu_(fuse_relu_by_default()) {
  check_positive(num_features, "BatchNorm2d", "num_features");
  KINDLING_CHECK(eps > 0 && momentum >= 0 && momentum <= 1, ValueError,
                 "BatchNorm2d: eps ({}) must be > 0 and momentum ({}) in [0, 1]", eps, momentum);
  weight_ = &register_parameter("weight", ones({num_features}));
  bias_ = &register_parameter("bias", zeros({num_features}));
  running_mean_ = &register_buffer("running_mean", zeros({num_features}));
  running_var_ = &register_buffer("running_var", ones({num_features}));
  num_batches_tracked_ =
      &register_buffer("num_batches_tracked", zeros({}, TensorOptions{}.with_dtype(DType::i64)), true);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  Tensor y =
      is_training() && sum_over_ranks_
          ? sync_batch_norm(x, *weight_, *bias_, *running_mean_, *running_var_, momentum_, eps_,
                            sum_over_ranks_)
          : batch_norm(x, *weight_, *bias_, *running_mean_, *running_var_, is_training(), momentum_, eps_);
  if (is_training()) ++num_batches_tracked_->data<int64_t>()[0];
  return y;
}

Tensor BatchNorm2d::forward_relu(const Tensor& x, const Tensor& residual) {
  if (!fuse_relu_ || (is_training() && sum_over_ranks_)) {
    const Tensor y = forward(x);
    return relu(residual.defined() ? add(y, residual) : y);
  }
  Tensor y = batch_norm_relu(x, *weight_, *bias_, *running_mean_, *running_var_, is_training(), momentum_,
                             eps_, residual);
  if (is_training()) ++num_batches_tracked_->data<int64_t>()[0];
  return y;
}

int64_t BatchNorm2d::num_batches_tracked() const { return num_batches_tracked_->data<int64_t>()[0]; }

std::string BatchNorm2d::describe() const {
  return fmt::format("BatchNorm2d({}, eps={}, momentum={})", num_features_, eps_, momentum_);
}

namespace {
// Calls fn on every BatchNorm2d of the module tree under `model`, `model` included.
template <typename Fn>
void for_each_batchnorm(Module& model, const Fn& fn) {
  if (auto* batchnorm = dynamic_cast<BatchNorm2d*>(&model)) fn(*batchnorm);
  for (const auto& [name, child] : model.children()) for_each_batchnorm(*child, fn);
}
}  // namespace

void set_sync_batchnorm(Module& model, const SumOverRanks& sum_over_ranks) {
  for_each_batchnorm(model, [&](BatchNorm2d& batchnorm) { batchnorm.set_sum_over_ranks(sum_over_ranks); });
}

void set_fused_batchnorm_relu(Module& model, bool fused) {
  for_each_batchnorm(model, [&](BatchNorm2d& batchnorm) { batchnorm.set_fuse_relu(fused); });
}

// ---- activations, pooling, dropout, flatten ----
Tensor ReLU::forward(const Tensor& x) { return relu(x); }

MaxPool2d::MaxPool2d(Size2 kernel_size, std::optional<Size2> stride, Size2 padding)
    : kernel_size_(kernel_size), stride_(stride.value_or(kernel_size)), padding_(padding) {}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_size_, stride_, padding_); }

std::string MaxPool2d::describe() const {
  return fmt::format("MaxPool2d(kernel_size={}, stride={}, padding={})", size2_str(kernel_size_),
                     size2_str(stride_), size2_str(padding_));
}

AvgPool2d::AvgPool2d(Size2 kernel_size, std::optional<Size2> stride, Size2 padding, bool count_include_pad)
    : kernel_size_(kernel_size),
      stride_(stride.value_or(kernel_size)),
      padding_(padding),
      count_include_pad_(count_include_pad) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_size_, stride_, padding_, count_include_pad_);
}

std::string AvgPool2d::describe() const {
  return fmt::format("AvgPool2d(kernel_size={}, stride={}, padding={})", size2_str(kernel_size_),
                     size2_str(stride_), size2_str(padding_));
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_size_(output_size) {
  check_positive(output_size.h, "AdaptiveAvgPool2d", "output height");
  check_positive(output_size.w, "AdaptiveAvgPool2d", "output width");
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size_); }

std::string AdaptiveAvgPool2d::describe() const {
  return fmt::format("AdaptiveAvgPool2d(output_size={})", size2_str(output_size_));
}

Dropout::Dropout(double p, Generator& generator) : p_(p), generator_(&generator) {
  KINDLING_CHECK(p >= 0 && p < 1, ValueError, "Dropout: p must be in [0, 1), got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), *generator_); }

std::string Dropout::describe() const { return fmt::format("Dropout(p={})", p_); }

std::string Flatten::describe() const {
  return fmt::format("Flatten(start_dim={}, end_dim={})", start_dim_, end_dim_);
}

}  // namespace kindling
