// The layers models are built from, with PyTorch's parameter names, defaults and initialisation.
// Each forward() requires an f32 input on the module's device and calls one op from ops/.
#pragma once
#include "core/rng.h"
#include "nn/module.h"
#include "ops/batchnorm.h"
#include "ops/size2.h"

#include <memory>
#include <optional>
#include <vector>

namespace kindling {

// How a layer's weight is drawn (always on the CPU, from the given generator).
enum class WeightInit {
  pytorch_default,         // kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in)); bias U(±1/sqrt(fan_in))
  kaiming_normal_fan_out,  // torchvision ResNet/VGG convs: N(0, 2/fan_out); bias 0
  normal_001,              // torchvision VGG linears: N(0, 0.01²); bias 0
};

// Modules run in order; children are named "0", "1", ... as in torch.nn.Sequential. A BatchNorm2d
// followed by a ReLU runs as one BatchNorm2d::forward_relu (same result, one pass).
class Sequential final : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return children().size(); }
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "Sequential"; }
};

// x [N, in] -> x · weightᵀ + bias [N, out]; weight [out, in], bias [out].
class Linear final : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true,
         WeightInit init = WeightInit::pytorch_default, Generator& generator = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  const Tensor& weight() const { return *weight_; }
  const Tensor& bias() const { return *bias_; }

 private:
  int64_t in_features_, out_features_;
  Tensor* weight_;
  Tensor* bias_;
  Tensor no_bias_;
};

struct Conv2dOptions {
  Size2 stride = 1, padding = 0, dilation = 1;
  int64_t groups = 1;
  bool bias = true;
  WeightInit init = WeightInit::pytorch_default;
};

// x [N, in, H, W] -> [N, out, P, Q]; weight [out, in/groups, kh, kw], bias [out] unless disabled.
class Conv2d final : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions options = {},
         Generator& generator = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  const Tensor& weight() const { return *weight_; }
  const Tensor& bias() const { return *bias_; }  // undefined when disabled
  const Conv2dOptions& options() const { return options_; }

 private:
  int64_t in_channels_, out_channels_;
  Size2 kernel_size_;
  Conv2dOptions options_;
  Tensor* weight_;
  Tensor* bias_;
  Tensor no_bias_;
};

// Per-channel normalisation of x [N, C, H, W]. Train mode: batch statistics, and running_mean /
// running_var (unbiased) updated by `momentum`, num_batches_tracked incremented. Eval mode: the
// running statistics. Parameters weight (1) and bias (0); buffers running_mean (0),
// running_var (1), num_batches_tracked (i64 scalar on the CPU).
class BatchNorm2d final : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  const Tensor& weight() const { return *weight_; }
  const Tensor& bias() const { return *bias_; }
  const Tensor& running_mean() const { return *running_mean_; }
  const Tensor& running_var() const { return *running_var_; }
  int64_t num_batches_tracked() const;
  double eps() const { return eps_; }
  // Sync BN: in training, statistics over the global batch of a data-parallel job, whose per-channel
  // sums `sum_over_ranks` adds up over the ranks (see sync_batch_norm). An empty function: local.
  void set_sum_over_ranks(SumOverRanks sum_over_ranks) { sum_over_ranks_ = std::move(sum_over_ranks); }
  // relu(forward(x) + residual), or relu(forward(x)) with residual undefined (then shaped like x).
  // Runs the fused batch_norm_relu (one pass each way over the activations) when fuse_relu() is on,
  // unless sync BN is training: then the composition of sync_batch_norm, add and relu. The result
  // is the composition's, up to float rounding; state, names and running statistics as forward().
  Tensor forward_relu(const Tensor& x, const Tensor& residual = Tensor());
  // Whether forward_relu fuses; on unless KINDLING_FUSE_BN_RELU=0 was set when the layer was made
  // (a value other than 0, 1 or empty is a ValueError).
  bool fuse_relu() const { return fuse_relu_; }
  void set_fuse_relu(bool fuse) { fuse_relu_ = fuse; }

 private:
  int64_t num_features_;
  double eps_, momentum_;
  bool fuse_relu_;
  SumOverRanks sum_over_ranks_;
  Tensor *weight_, *bias_, *running_mean_, *running_var_, *num_batches_tracked_;
};

// Sets sum_over_ranks on every BatchNorm2d of `model` (sync BN for data-parallel training).
void set_sync_batchnorm(Module& model, const SumOverRanks& sum_over_ranks);
// Turns the BatchNorm + ReLU (+ residual) fusion of every BatchNorm2d of `model` on or off.
void set_fused_batchnorm_relu(Module& model, bool fused);

class ReLU final : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string describe() const override { return "ReLU"; }
};

// Runs `modules` in order on x, a BatchNorm2d followed by a ReLU as one BatchNorm2d::forward_relu.
Tensor forward_in_order(const std::vector<Module*>& modules, const Tensor& x);

// stride defaults to the kernel size, as in PyTorch.
class MaxPool2d final : public Module {
 public:
  explicit MaxPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Size2 kernel_size() const { return kernel_size_; }
  Size2 stride() const { return stride_; }
  Size2 padding() const { return padding_; }

 private:
  Size2 kernel_size_, stride_, padding_;
};

class AvgPool2d final : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, std::optional<Size2> stride = std::nullopt, Size2 padding = 0,
                     bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Size2 kernel_size() const { return kernel_size_; }
  Size2 stride() const { return stride_; }
  Size2 padding() const { return padding_; }
  bool count_include_pad() const { return count_include_pad_; }

 private:
  Size2 kernel_size_, stride_, padding_;
  bool count_include_pad_;
};

// x [N, C, H, W] -> [N, C, out_h, out_w] with PyTorch's adaptive windows; (1, 1) is global pooling.
class AdaptiveAvgPool2d final : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Size2 output_size() const { return output_size_; }

 private:
  Size2 output_size_;
};

// Train mode: zeroes each element with probability p and scales the rest by 1/(1-p), with the mask
// drawn from `generator`; eval mode: the identity.
class Dropout final : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator& generator = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;

 private:
  double p_;
  Generator* generator_;
};

// Flattens dims start_dim..end_dim into one: [N, C, H, W] -> [N, C*H*W] by default.
class Flatten final : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim_, end_dim_); }
  std::string describe() const override;
  int64_t start_dim() const { return start_dim_; }
  int64_t end_dim() const { return end_dim_; }

 private:
  int64_t start_dim_, end_dim_;
};

}  // namespace kindling
