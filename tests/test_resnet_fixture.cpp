// Cross-check against PyTorch: tests/reference/resnet20_fixture.safetensors holds a CIFAR ResNet-20's
// weights, an input batch, and PyTorch's logits, cross-entropy loss and every parameter's gradient
// in train and in eval mode (made by tests/reference/make_resnet_fixture.py, computed in float64).
// kindling's resnet20 must reproduce them to a norm-relative error of 1e-4 per tensor. The test
// reads the committed fixture only; PyTorch is not needed to run it.
#include "core/autograd.h"
#include "core/backend.h"
#include "core/safetensors.h"
#include "nn/models.h"
#include "ops/ops.h"
#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace kindling;

namespace {

const char* const kFixture = KINDLING_SOURCE_DIR "/tests/reference/resnet20_fixture.safetensors";
constexpr double kTolerance = 1e-4;

// ||found - expected|| / ||expected||, in double.
double relative_error(const Tensor& found, const Tensor& expected) {
  REQUIRE(found.shape() == expected.shape());
  return test::relative_norm_error(found.to_vector<float>(), expected.to_vector<float>());
}

// Mean cross-entropy from primitive ops: -mean_n log_softmax(logits)[n, label_n].
Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  return neg(mean(sum(mul(log_softmax(logits, 1), one_hot(labels, logits.size(1))), 1)));
}

// Runs one forward and backward in `mode` on `device` and compares logits, loss and every gradient.
void check_mode(const std::string& mode, Device device = Device::cpu()) {
  const SafetensorsFile fixture = SafetensorsFile::read(kFixture);
  auto model = make_model("resnet20", 3, 10, 32);
  const NamedTensors params = model->named_parameters();

  // The fixture lists PyTorch's parameters in PyTorch's order; kindling's names and order agree.
  std::vector<std::string> fixture_names;
  for (const SafetensorsEntry& e : fixture.entries())
    if (e.name.rfind("weights.", 0) == 0) fixture_names.push_back(e.name.substr(8));
  REQUIRE(fixture_names.size() == params.size());
  for (size_t i = 0; i < params.size(); ++i) CHECK(fixture_names[i] == params[i].first);

  NamedTensors state;
  for (const auto& [name, tensor] : model->state_dict()) {
    if (fixture.find("weights." + name))
      state.emplace_back(name, fixture.tensor("weights." + name));
    else if (mode == "eval" && fixture.find("eval." + name))
      state.emplace_back(name, fixture.tensor("eval." + name));
    else
      state.emplace_back(name, tensor.detach().clone());  // train: fresh statistics, as PyTorch's
  }
  model->load_state_dict(state);
  model->to(device);  // moves each parameter in place: `params` above follows
  for (const auto& [name, param] : params) {
    INFO(name);
    REQUIRE(param.device() == device);
  }
  model->train(mode == "train");

  const Tensor logits = model->forward(fixture.tensor("input").to(device));
  const Tensor loss = cross_entropy(logits, fixture.tensor("labels").to(device));
  loss.backward();

  const double logits_error = relative_error(logits, fixture.tensor(mode + ".logits"));
  CHECK(logits_error <= kTolerance);
  double worst = logits_error;
  const double loss_error =
      std::fabs(double(loss.item<float>()) - fixture.tensor(mode + ".loss").item<float>()) /
      std::fabs(fixture.tensor(mode + ".loss").item<float>());
  CHECK(loss_error <= kTolerance);
  std::string worst_name = "logits";
  for (const auto& [name, param] : params) {
    INFO(mode, " gradient of ", name);
    REQUIRE(param.grad().defined());
    const double error = relative_error(param.grad(), fixture.tensor(mode + ".grad." + name));
    CHECK(error <= kTolerance);
    if (error > worst) worst = error, worst_name = name;
  }
  if (mode == "train") {
    // The one training forward also moved the running statistics by momentum 0.1.
    for (const auto& [name, buffer] : model->named_buffers()) {
      if (buffer.dtype() != DType::f32) continue;
      INFO("running statistic ", name);
      CHECK(relative_error(buffer, fixture.tensor("train." + name)) <= kTolerance);
    }
  }
  MESSAGE(mode, " mode on ", device.str(), ": loss ", loss.item<float>(), ", largest relative error ", worst,
          " (", worst_name, ")");
}

}  // namespace

TEST_CASE("ResNet-20 matches PyTorch in train mode: logits, loss, every gradient, running stats") {
  check_mode("train");
}

TEST_CASE("ResNet-20 matches PyTorch in eval mode with non-trivial running statistics") {
  check_mode("eval");
}

TEST_CASE("ResNet-20 matches PyTorch on CUDA, train and eval") {
  if (!cuda_available()) {
    MESSAGE("no CUDA device: skipping the CUDA fixture check");
    return;
  }
  check_mode("train", Device::cuda());
  check_mode("eval", Device::cuda());
}
