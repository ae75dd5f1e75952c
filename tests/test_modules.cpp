// nn/ module behaviour: train() and eval(), Dropout, load_state_dict's checks, zero_grad and
// printing, and Module::to keeping each parameter the same tensor.
#include "core/autograd.h"
#include "core/backend.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/test_nn_util.h"
#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("train() and eval() switch BatchNorm between batch and running statistics") {
  BatchNorm2d bn(2, 1e-5, 0.1);
  // Channel 0 holds 1..8, channel 1 holds 10, 20, ..., 80: batch of 2, 2x2 planes.
  std::vector<float> values(16);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 4; ++i)
        values[size_t(n * 8 + c * 4 + i)] = float((n * 4 + i + 1) * (c == 0 ? 1 : 10));
  const Tensor x = from_vector(values, {2, 2, 2, 2});
  REQUIRE(bn.is_training());
  const std::vector<float> y = bn.forward(x).to_vector<float>();
  // Train mode normalises with the batch statistics: mean 4.5, biased variance 5.25 for channel 0.
  CHECK(y[0] == doctest::Approx((1.0 - 4.5) / std::sqrt(5.25 + 1e-5)).epsilon(1e-5));
  // Running statistics: 0.9 * old + 0.1 * batch value, with the unbiased variance (6 for 1..8).
  const std::vector<float> running_mean = bn.running_mean().to_vector<float>();
  const std::vector<float> running_var = bn.running_var().to_vector<float>();
  CHECK(running_mean[0] == doctest::Approx(0.45).epsilon(1e-6));
  CHECK(running_mean[1] == doctest::Approx(4.5).epsilon(1e-6));
  CHECK(running_var[0] == doctest::Approx(0.9 + 0.1 * 6.0).epsilon(1e-6));
  CHECK(running_var[1] == doctest::Approx(0.9 + 0.1 * 600.0).epsilon(1e-6));
  CHECK(bn.num_batches_tracked() == 1);

  bn.eval();
  const std::vector<float> z = bn.forward(x).to_vector<float>();
  CHECK(z[0] == doctest::Approx((1.0 - 0.45) / std::sqrt(1.5 + 1e-5)).epsilon(1e-5));
  CHECK(z[4] == doctest::Approx((10.0 - 4.5) / std::sqrt(60.9 + 1e-5)).epsilon(1e-5));
  CHECK(bn.running_mean().to_vector<float>() == running_mean);  // eval leaves the statistics alone
  CHECK(bn.num_batches_tracked() == 1);

  // A model's mode reaches every descendant; eval output does not depend on the batch.
  auto model = make_model("resnet20", 3, 10);
  model->eval();
  for (const auto& [name, stage] : model->children()) {
    CHECK(!stage->is_training());
    for (const auto& [block_name, block] : stage->children()) CHECK(!block->is_training());
  }
  Generator gen(3);
  Tensor batch = randn({4, 3, 32, 32}, {}, &gen);
  const std::vector<float> all = model->forward(batch).to_vector<float>();
  const std::vector<float> one = model->forward(batch.narrow(0, 1, 1)).to_vector<float>();
  for (size_t k = 0; k < 10; ++k) CHECK(one[k] == doctest::Approx(all[10 + k]).epsilon(1e-4));
  model->train();
  CHECK(model->child("layer1").child("0").is_training());
}

TEST_CASE("Dropout drops in train mode and is the identity in eval mode") {
  Generator gen(11);
  Dropout drop(0.5, gen);
  const Tensor x = ones({1000});
  const std::vector<float> y = drop.forward(x).to_vector<float>();
  const auto zeros_count = std::count(y.begin(), y.end(), 0.0f);
  CHECK(zeros_count > 400);
  CHECK(zeros_count < 600);
  CHECK(std::count(y.begin(), y.end(), 2.0f) == 1000 - zeros_count);
  drop.eval();
  CHECK(drop.forward(x).to_vector<float>() == x.to_vector<float>());
}

TEST_CASE("load_state_dict copies by name and names the first mismatch") {
  Generator g1(1), g2(2);
  auto source = make_model("resnet20", 3, 10, 32, g1);
  auto target = make_model("resnet20", 3, 10, 32, g2);
  target->load_state_dict(source->state_dict());
  for (const auto& [name, tensor] : source->state_dict()) {
    INFO(name);
    if (tensor.dtype() == DType::f32)
      CHECK(tensor.to_vector<float>() == named(target->state_dict(), name).to_vector<float>());
  }
  // Wrong shape, missing and unexpected tensors are named; nothing is copied.
  NamedTensors wrong = source->state_dict();
  const std::vector<float> before = named(target->state_dict(), "conv1.weight").to_vector<float>();
  for (auto& [name, tensor] : wrong)
    if (name == "layer1.0.conv1.weight") tensor = zeros({32, 16, 3, 3});
  for (auto& [name, tensor] : wrong)
    if (name == "conv1.weight") tensor = zeros_like(tensor);
  CHECK(error_text([&] { target->load_state_dict(wrong); }) ==
        "load_state_dict: layer1.0.conv1.weight is [32,16,3,3], the model expects [16,16,3,3]");
  CHECK(named(target->state_dict(), "conv1.weight").to_vector<float>() == before);
  NamedTensors missing = source->state_dict();
  missing.erase(missing.begin() + 3);
  CHECK(error_text([&] { target->load_state_dict(missing); }) ==
        "load_state_dict: bn1.running_mean is missing");
  NamedTensors extra = source->state_dict();
  extra.emplace_back("fc2.weight", zeros({2}));
  CHECK(error_text([&] { target->load_state_dict(extra); }) ==
        "load_state_dict: unexpected tensor fc2.weight");
}

TEST_CASE("zero_grad, to(cpu) and printing") {
  Linear layer(3, 2);
  Tensor y = sum(layer.forward(ones({4, 3})));
  y.backward();
  REQUIRE(layer.weight().grad().defined());
  CHECK(layer.weight().grad().to_vector<float>() == std::vector<float>(6, 4.0f));
  layer.zero_grad();
  CHECK(!layer.weight().grad().defined());
  const Tensor* weight_before = &layer.weight();
  layer.to(Device::cpu());
  CHECK(&layer.weight() == weight_before);
  CHECK(layer.device() == Device::cpu());
  CHECK(layer.weight().requires_grad());
  const std::string text = make_model("resnet20", 3, 10)->str();
  CHECK(text.find("(conv1): Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)") !=
        std::string::npos);
  CHECK(text.find("(fc): Linear(in_features=64, out_features=10, bias=true)") != std::string::npos);
}

namespace {
// Two SGD steps (momentum, so the optimizer has state) of a small ResNet-20 on `device`, with the
// optimizer built before (or after) Module::to. Returns the parameters on the CPU afterwards.
std::vector<std::vector<float>> two_steps_with_optimizer(Device device, bool optimizer_before_to) {
  Generator init(3), data(4);
  auto model = make_model("resnet20", 1, 10, 8, init);
  const NamedTensors handles = model->named_parameters();
  SgdOptions options;
  options.lr = 0.1;
  options.momentum = 0.9;
  std::unique_ptr<Sgd> early = optimizer_before_to ? std::make_unique<Sgd>(handles, options) : nullptr;
  model->to(device);
  std::unique_ptr<Sgd> late =
      optimizer_before_to ? nullptr : std::make_unique<Sgd>(model->named_parameters(), options);
  Sgd& optimizer = early ? *early : *late;
  const NamedTensors moved = model->named_parameters();
  REQUIRE(moved.size() == handles.size());
  for (size_t i = 0; i < moved.size(); ++i) {
    INFO(moved[i].first);
    CHECK(moved[i].second.is_same(handles[i].second));  // the same tensor, as in PyTorch
    CHECK(handles[i].second.device() == device);
    CHECK(handles[i].second.requires_grad());
  }
  for (int step = 0; step < 2; ++step) {
    const Tensor images = randn({4, 1, 8, 8}, {}, &data).to(device);
    const Tensor labels = from_vector<int64_t>({1, 7, 3, 3}, {4}).to(device);
    optimizer.zero_grad();
    sum(mul(log_softmax((*model)(images), 1), one_hot(labels, 10))).backward();
    optimizer.step();
  }
  for (const auto& [name, state] : optimizer.state_dict()) {
    INFO("optimizer state ", name);
    CHECK(state.device() == (state.dtype() == DType::i64 ? Device::cpu() : device));
  }
  std::vector<std::vector<float>> values;
  for (const auto& [name, p] : handles) values.push_back(p.to_vector<float>());
  return values;
}
}  // namespace

TEST_CASE("Module::to keeps each parameter's identity: an optimizer built before it trains") {
  Generator init(3);
  const NamedTensors start = make_model("resnet20", 1, 10, 8, init)->named_parameters();
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available())
    devices.push_back(Device::cuda());
  else
    MESSAGE("no CUDA GPU: Module::to checked CPU to CPU only (" << cuda_unavailable_reason() << ")");
  for (const Device device : devices) {
    INFO("device ", device.str());
    const auto before = two_steps_with_optimizer(device, true);
    const auto after = two_steps_with_optimizer(device, false);
    REQUIRE(before.size() == start.size());
    for (size_t i = 0; i < before.size(); ++i) {
      INFO(start[i].first);
      CHECK(before[i] != start[i].second.to_vector<float>());  // every parameter trained
      double diff = 0, norm = 0;
      for (size_t j = 0; j < before[i].size(); ++j) {
        diff += (double(before[i][j]) - after[i][j]) * (double(before[i][j]) - after[i][j]);
        norm += double(after[i][j]) * after[i][j];
      }
      CHECK(std::sqrt(diff) <= 1e-5 * std::sqrt(norm));  // and as far as one built after the move
    }
  }
}

TEST_CASE("move_to_device_in_place keeps the tensor and refuses a non-leaf") {
  Tensor leaf = ones({2, 3});
  leaf.set_requires_grad(true);
  sum(leaf).backward();
  const void* data = leaf.data_ptr();
  const Tensor alias = leaf;
  move_to_device_in_place(alias, Device::cpu());  // already there: nothing moves, nothing copies
  CHECK(leaf.data_ptr() == data);
  CHECK(leaf.grad().to_vector<float>() == std::vector<float>(6, 1.0f));
  CHECK_THROWS_AS(move_to_device_in_place(mul(leaf, 2.0), Device::cuda()), AutogradError);
  if (cuda_available()) {
    move_to_device_in_place(alias, Device::cuda());
    CHECK(leaf.device() == Device::cuda());
    CHECK(leaf.grad().device() == Device::cuda());
    CHECK(leaf.to_vector<float>() == std::vector<float>(6, 1.0f));
  }
}
