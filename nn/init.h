// Weight initialisation as PyTorch and torchvision do it. Values are drawn on the CPU from a
// kindling Generator and then copied to the tensor's device, so a CPU run and a CUDA run with the
// same seed start from bit-identical weights. Every function writes in place (under NoGradGuard).
#pragma once
#include "core/rng.h"
#include "core/tensor.h"

namespace kindling::init {

// Weight [out, in, k...]: fan_in = in * prod(k), fan_out = out * prod(k). Requires dim() >= 2.
int64_t fan_in(const Tensor& weight);
int64_t fan_out(const Tensor& weight);

enum class FanMode { fan_in, fan_out };

// torch.nn.init.kaiming_normal_(w, a, mode, nonlinearity="leaky_relu"): N(0, std²) with
// std = sqrt(2 / (1 + a²)) / sqrt(fan); a = 0 is the ReLU gain.
void kaiming_normal_(Tensor weight, FanMode mode, double a, Generator& generator);
// torch.nn.init.kaiming_uniform_: U(-bound, bound), bound = sqrt(3) * sqrt(2 / (1 + a²)) / sqrt(fan).
void kaiming_uniform_(Tensor weight, FanMode mode, double a, Generator& generator);
void uniform_(Tensor tensor, double low, double high, Generator& generator);
void normal_(Tensor tensor, double mean, double std, Generator& generator);
void constant_(Tensor tensor, double value);

// PyTorch's default for Linear and Conv2d: kaiming_uniform_(a = sqrt(5)) on the weight, which is
// U(±1/sqrt(fan_in)), and bias (may be undefined) U(±1/sqrt(fan_in)).
void pytorch_default_(Tensor weight, Tensor bias, Generator& generator);

}  // namespace kindling::init
