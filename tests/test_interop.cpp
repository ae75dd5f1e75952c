// Models that travel: a kindling checkpoint loads into the PyTorch twin (bench/pytorch_models.py)
// and a PyTorch state dict saved as safetensors loads into kindling, with the same logits within
// 1e-4 and the same accuracy. Needs Python with torch (Debian python3-torch); skips without it.
#include "test_interop_util.h"

#include "core/autograd.h"
#include "core/checkpoint.h"
#include "nn/models.h"
#include "ops/ops.h"

#include <doctest/doctest.h>

#include <cstdlib>

using namespace kindling;
using namespace kindling::interop_test;

namespace {

// Trained-looking BatchNorm statistics and affine parameters, so that a mix-up of running_mean
// and running_var, or of weight and bias, changes the logits.
void randomize_batchnorm(Module& model, Generator& generator) {
  NoGradGuard no_grad;
  for (auto& [name, tensor] : model.state_dict()) {
    auto ends_with = [&](const std::string& suffix) {
      return name.size() > suffix.size() &&
             name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with("running_mean") || ends_with("bn1.bias") || ends_with("bn2.bias"))
      tensor.copy_(rand(tensor.shape(), {}, &generator, -0.2, 0.2));
    else if (ends_with("running_var") || ends_with("bn1.weight") || ends_with("bn2.weight"))
      tensor.copy_(rand(tensor.shape(), {}, &generator, 0.5, 1.5));
  }
}

}  // namespace

TEST_CASE("a kindling checkpoint loads into the PyTorch twin with the same logits and accuracy") {
  const std::string python = torch_python();
  if (python.empty()) {
    MESSAGE("no python3 with torch (Debian python3-torch): skipping the kindling -> PyTorch check");
    return;
  }
  const std::string dir = scratch_dir("to_torch");
  Generator generator(5);
  auto model = make_model("resnet20", 1, 10, 28, generator);
  randomize_batchnorm(*model, generator);
  CheckpointInfo info;
  info.model = "resnet20";
  info.model_config = model_config_json(1, 10, 28);
  save_checkpoint(dir + "/model.safetensors", model->state_dict(), {}, info);

  const EvalInputs inputs = eval_inputs(256);
  model->eval();
  Tensor logits;
  {
    NoGradGuard no_grad;
    logits = model->forward(inputs.images);
  }
  CHECK(max_abs_difference(logits, mean(logits, 0, true)) > 0.01);  // inputs that tell the rows apart
  write_safetensors(dir + "/inputs.safetensors",
                    {{"images", inputs.images}, {"labels", inputs.labels}, {"logits", logits}}, {});
  const std::string command = python + " " + source_path("tests/reference/torch_interop.py") + " check " +
                              dir + "/model.safetensors " + dir + "/inputs.safetensors";
  CHECK(std::system(command.c_str()) == 0);
  // The check can fail: logits off by 1e-3 are refused.
  write_safetensors(dir + "/inputs.safetensors",
                    {{"images", inputs.images}, {"labels", inputs.labels}, {"logits", add(logits, 1e-3)}},
                    {});
  CHECK(std::system((command + " > /dev/null").c_str()) != 0);
}

TEST_CASE("a PyTorch state dict saved as safetensors loads into kindling with the same logits") {
  const std::string python = torch_python();
  if (python.empty()) {
    MESSAGE("no python3 with torch (Debian python3-torch): skipping the PyTorch -> kindling check");
    return;
  }
  const std::string dir = scratch_dir("from_torch");
  const EvalInputs inputs = eval_inputs(256);
  write_safetensors(dir + "/inputs.safetensors", {{"images", inputs.images}, {"labels", inputs.labels}}, {});
  const std::string command = python + " " + source_path("tests/reference/torch_interop.py") +
                              " make resnet20 " + dir + "/torch.safetensors " + dir +
                              "/torch_logits.safetensors " + dir + "/inputs.safetensors";
  REQUIRE(std::system(command.c_str()) == 0);

  auto model = make_model("resnet20", 1, 10, 28);
  load_checkpoint(dir + "/torch.safetensors", model->state_dict());
  model->eval();
  NoGradGuard no_grad;
  const Tensor logits = model->forward(inputs.images);
  const Tensor torch_logits = SafetensorsFile::read(dir + "/torch_logits.safetensors").tensor("logits");
  CHECK(max_abs_difference(logits, torch_logits) <= 1e-4);
  CHECK(accuracy(logits, inputs.labels) == accuracy(torch_logits, inputs.labels));
}
