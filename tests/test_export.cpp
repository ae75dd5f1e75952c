// `kindling export --onnx`: the exported graph passes the ONNX checker (the C++ one always; Debian
// python3-onnx's where installed) and computes kindling's logits within 1e-4 (with onnxruntime, or
// tests/reference/onnx_check.py's torch interpreter); unsupported layers are named.
#include "test_interop_util.h"

#include "apps/onnx_export.h"
#include "core/autograd.h"
#include "core/checkpoint.h"
#include "nn/layers.h"
#include "nn/models.h"

#include <doctest/doctest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <fstream>
#include <set>

using namespace kindling;
using namespace kindling::interop_test;

namespace {

std::string kindling_bin() {
  const char* bin = std::getenv("KINDLING_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "KINDLING_BIN is not set (run the test through ctest)");
  return bin;
}

// A checkpoint of `model_name` (1 channel, 28x28, 10 classes) with trained-looking BatchNorm
// statistics (and a VGG classifier larger than its N(0, 0.01²) init), and its eval logits on `inputs`.
Tensor write_checkpoint(const std::string& model_name, const std::string& path, const EvalInputs& inputs) {
  Generator generator(7);
  auto model = make_model(model_name, 1, 10, 28, generator);
  {
    NoGradGuard no_grad;
    for (auto& [name, tensor] : model->state_dict()) {
      if (name.find("running_mean") != std::string::npos)
        tensor.copy_(rand(tensor.shape(), {}, &generator, -0.2, 0.2));
      if (name.find("running_var") != std::string::npos)
        tensor.copy_(rand(tensor.shape(), {}, &generator, 0.5, 1.5));
      if (name == "classifier.weight") tensor.copy_(rand(tensor.shape(), {}, &generator, -0.3, 0.3));
    }
  }
  CheckpointInfo info;
  info.model = model_name;
  info.model_config = model_config_json(1, 10, 28);
  save_checkpoint(path, model->state_dict(), {}, info);
  model->eval();
  NoGradGuard no_grad;
  return model->forward(inputs.images);
}

onnx::ModelProto read_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto model;
  REQUIRE(model.ParseFromIstream(&in));
  return model;
}

// A layer the exporter does not know.
class Square final : public Module {
 public:
  Tensor forward(const Tensor& x) override { return mul(x, x); }
  std::string describe() const override { return "Square"; }
};

}  // namespace

TEST_CASE("kindling export --onnx writes ResNet-20 and VGG-11 as opset-13 models with kindling's logits") {
  for (const char* model_name : {"resnet20", "vgg11"}) {
    CAPTURE(model_name);
    const std::string dir = scratch_dir(std::string("export_") + model_name);
    const EvalInputs inputs = eval_inputs(64);
    const Tensor logits = write_checkpoint(model_name, dir + "/model.safetensors", inputs);
    const std::string onnx_path = dir + "/model.onnx";
    REQUIRE(std::system((kindling_bin() + " export --onnx " + onnx_path + " --checkpoint " + dir +
                         "/model.safetensors > /dev/null")
                            .c_str()) == 0);

    const onnx::ModelProto model = read_model(onnx_path);
    CHECK_NOTHROW(onnx::checker::check_model(model));
    CHECK(model.opset_import(0).version() >= 13);
    std::set<std::string> ops;
    for (const auto& node : model.graph().node()) ops.insert(node.op_type());
    CHECK(ops.count("BatchNormalization") == 1);  // eval-mode BatchNorm on the running statistics
    CHECK(model.graph().output(0).name() == "logits");
    CHECK(max_abs_difference(logits, mean(logits, 0, true)) > 0.01);  // inputs that tell the rows apart

    const std::string python = python_with("onnx, numpy");
    if (python.empty()) {
      MESSAGE("no python3 with onnx and numpy (Debian python3-onnx): skipping the Python checker and logits");
      continue;
    }
    write_safetensors(dir + "/inputs.safetensors", {{"images", inputs.images}, {"logits", logits}}, {});
    const std::string command = python + " " + source_path("tests/reference/onnx_check.py") + " " +
                                onnx_path + " " + dir + "/inputs.safetensors";
    const int status = std::system(command.c_str());
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
      MESSAGE("neither onnxruntime nor torch in python3: the ONNX logits were not compared");
      continue;
    }
    CHECK(status == 0);
    // The comparison can fail: logits off by 1e-3 are refused.
    write_safetensors(dir + "/inputs.safetensors", {{"images", inputs.images}, {"logits", add(logits, 1e-3)}},
                      {});
    CHECK(std::system((command + " > /dev/null").c_str()) != 0);
  }
}

TEST_CASE("ONNX export names the layer it cannot express") {
  Sequential model;
  model.push_back(std::make_shared<Conv2d>(1, 4, 3));
  model.push_back(std::make_shared<Square>());
  model.eval();
  CHECK_THROWS_WITH_AS(app::export_onnx(model, {.channels = 1, .height = 8, .width = 8}),
                       "ONNX export: layer 1 (Square) is not supported", ValueError);
}

TEST_CASE("kindling export refuses a checkpoint without model metadata, writing nothing") {
  const std::string dir = scratch_dir("export_plain");
  write_safetensors(dir + "/plain.safetensors", {{"w", zeros({2})}}, {});
  const std::string command = kindling_bin() + " export --onnx " + dir + "/out.onnx --checkpoint " + dir +
                              "/plain.safetensors 2> " + dir + "/stderr.txt";
  CHECK(std::system(command.c_str()) != 0);
  CHECK_FALSE(std::filesystem::exists(dir + "/out.onnx"));
  CHECK_FALSE(std::filesystem::exists(dir + "/out.onnx.tmp"));
  std::ifstream err(dir + "/stderr.txt");
  std::string line;
  std::getline(err, line);
  CHECK(line.find("no model or model_config") != std::string::npos);
}
