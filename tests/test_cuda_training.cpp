// Training steps end to end on both devices: ResNet-20, cross entropy, SGD with Nesterov momentum
// and weight decay. Three steps on the CPU and on CUDA from the same initial weights and batches
// must leave the same parameters and BatchNorm statistics (relative 1e-3 per tensor); the CPU run
// itself must repeat bit for bit, and each run checks that its tensors live on its device. The CUDA
// case skips with a message where there is no GPU (fails under KINDLING_REQUIRE_CUDA).
#include "core/autograd.h"
#include "core/backend.h"
#include "core/rng.h"
#include "losses/loss.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace kindling;

namespace {

// Three SGD steps of ResNet-20 (1 channel, 28x28, 10 classes, batch 16) on `device`; the model is
// initialised on the CPU by Generator(seed) and the batches are drawn by Generator(seed + 1), so
// every device starts from the same weights and sees the same data. Returns the state dict on the
// CPU after the steps.
NamedTensors three_sgd_steps(Device device, uint64_t seed) {
  Generator init(seed), data(seed + 1);
  auto model = make_model("resnet20", 1, 10, 28, init);
  model->to(device);
  model->train();
  // The run must really happen on `device`: every parameter and statistic lives there (only
  // BatchNorm's step counters are host-side), and so do the activations.
  for (const auto& [name, tensor] : model->state_dict()) {
    INFO(name);
    const bool host_counter = name.find("num_batches_tracked") != std::string::npos;
    REQUIRE(tensor.device() == (host_counter ? Device::cpu() : device));
  }
  SgdOptions options;
  options.lr = 0.1;
  options.momentum = 0.9;
  options.nesterov = true;
  options.weight_decay = 5e-4;
  Sgd optimizer(model->named_parameters(), options);
  Loss loss("ce");
  for (int step = 0; step < 3; ++step) {
    const Tensor images = randn({16, 1, 28, 28}, {}, &data).to(device);
    std::vector<int64_t> label_values(16);
    for (int64_t& label : label_values) label = data.randint(10);
    const Tensor labels = from_vector(label_values, {16}).to(device);
    optimizer.zero_grad();
    const Tensor logits = (*model)(images);
    REQUIRE(logits.device() == device);
    const Tensor value = loss(logits, labels);
    value.backward();
    for (const auto& [name, parameter] : model->named_parameters()) {
      INFO(name);
      REQUIRE(parameter.grad().device() == device);
    }
    optimizer.step();
  }
  for (const auto& [name, state] : optimizer.state_dict()) {
    INFO("optimizer state ", name);
    REQUIRE(state.device() == (state.dtype() == DType::i64 ? Device::cpu() : device));
  }
  NamedTensors state;
  for (const auto& [name, tensor] : model->state_dict()) state.emplace_back(name, tensor.to(Device::cpu()));
  return state;
}

}  // namespace

TEST_CASE("three SGD steps of ResNet-20 on the CPU repeat bit for bit and move every parameter") {
  const NamedTensors first = three_sgd_steps(Device::cpu(), 5), second = three_sgd_steps(Device::cpu(), 5);
  Generator init(5);
  const NamedTensors start = make_model("resnet20", 1, 10, 28, init)->state_dict();
  REQUIRE(first.size() == second.size());
  REQUIRE(first.size() == start.size());
  for (size_t i = 0; i < first.size(); ++i) {
    INFO(first[i].first);
    if (first[i].second.dtype() != DType::f32) continue;
    CHECK(first[i].second.to_vector<float>() == second[i].second.to_vector<float>());
    CHECK(first[i].second.to_vector<float>() != start[i].second.to_vector<float>());
  }
}

TEST_CASE("three SGD steps of ResNet-20 on CUDA give the CPU's parameters (relative 1e-3)") {
  if (!cuda_available()) {
    MESSAGE("no CUDA device: skipping the CPU/CUDA three-step training check");
    return;
  }
  const NamedTensors on_cpu = three_sgd_steps(Device::cpu(), 7), on_gpu = three_sgd_steps(Device::cuda(), 7);
  REQUIRE(on_cpu.size() == on_gpu.size());
  for (size_t i = 0; i < on_cpu.size(); ++i) {
    INFO(on_cpu[i].first);
    REQUIRE(on_cpu[i].first == on_gpu[i].first);
    if (on_cpu[i].second.dtype() == DType::f32) {
      const std::vector<float> gpu = on_gpu[i].second.to_vector<float>(),
                               cpu = on_cpu[i].second.to_vector<float>();
      CHECK(test::relative_norm_error(gpu, cpu) < 1e-3);
    } else {
      CHECK(on_cpu[i].second.to_vector<int64_t>() == on_gpu[i].second.to_vector<int64_t>());
    }
  }
}
