#include "nn/init.h"

#include "core/autograd.h"

#include <cmath>

namespace kindling::init {

namespace {
int64_t receptive_field(const Tensor& weight) {
  KINDLING_CHECK(weight.dim() >= 2, ShapeError,
                 "init: fan in/out needs a weight with at least 2 dims, got {}", weight.describe());
  int64_t size = 1;
  for (int64_t d = 2; d < weight.dim(); ++d) size *= weight.size(d);
  return size;
}
double gain(double a) { return std::sqrt(2.0 / (1.0 + a * a)); }
int64_t fan(const Tensor& weight, FanMode mode) {
  return mode == FanMode::fan_in ? fan_in(weight) : fan_out(weight);
}
// Host-drawn values are copied in without recording: initialisation is not part of any graph.
void assign(Tensor& destination, const Tensor& host_values) {
  NoGradGuard no_grad;
  destination.copy_(host_values);
}
}  // namespace

int64_t fan_in(const Tensor& weight) { return weight.size(1) * receptive_field(weight); }
int64_t fan_out(const Tensor& weight) { return weight.size(0) * receptive_field(weight); }

void kaiming_normal_(Tensor weight, FanMode mode, double a, Generator& generator) {
  normal_(weight, 0.0, gain(a) / std::sqrt(double(fan(weight, mode))), generator);
}

void kaiming_uniform_(Tensor weight, FanMode mode, double a, Generator& generator) {
  const double bound = std::sqrt(3.0) * gain(a) / std::sqrt(double(fan(weight, mode)));
  uniform_(weight, -bound, bound, generator);
}

void uniform_(Tensor tensor, double low, double high, Generator& generator) {
  assign(tensor, rand(tensor.shape(), {}, &generator, low, high));
}

void normal_(Tensor tensor, double mean, double std, Generator& generator) {
  assign(tensor, randn(tensor.shape(), {}, &generator, mean, std));
}

void constant_(Tensor tensor, double value) {
  NoGradGuard no_grad;
  tensor.fill_(value);
}

void pytorch_default_(Tensor weight, Tensor bias, Generator& generator) {
  kaiming_uniform_(weight, FanMode::fan_in, std::sqrt(5.0), generator);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(double(fan_in(weight)));
    uniform_(bias, -bound, bound, generator);
  }
}

}  // namespace kindling::init
