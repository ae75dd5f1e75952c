// core/checkpoint: name/shape validation against a model, a training checkpoint's model, optimizer,
// metadata and RNG, and a CUDA model's checkpoint on the CPU.
#include "core/autograd.h"
#include "core/backend.h"
#include "core/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/test_checkpoint_util.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

using namespace kindling;
using namespace kindling::checkpoint_test;
namespace fs = std::filesystem;

TEST_CASE("loading validates names, dtypes and shapes against the model, naming the first mismatch") {
  const std::string dir = scratch("mismatch");
  const std::string path = dir + "/last.safetensors";
  const std::string prefix = "checkpoint " + path + ": ";
  Generator g(1);
  auto wide = make_model("resnet20", 3, 10, 32, g);
  // A model whose layer1.0.conv1 has 32 output channels stands in for an incompatible checkpoint.
  NamedTensors state = wide->state_dict();
  for (auto& [name, tensor] : state)
    if (name == "layer1.0.conv1.weight") tensor = zeros({16, 16, 3, 3});
  save_checkpoint(path, state, {}, {});
  NamedTensors expects = wide->state_dict();
  for (auto& [name, tensor] : expects)
    if (name == "layer1.0.conv1.weight") tensor = zeros({32, 16, 3, 3});
  CHECK(error_text([&] { load_checkpoint(path, expects); }) ==
        prefix + "layer1.0.conv1.weight is [16,16,3,3], the model expects [32,16,3,3]");

  auto model = make_model("resnet20", 3, 10);
  NamedTensors fewer = model->state_dict();
  fewer.erase(fewer.end() - 1);  // fc.bias
  save_checkpoint(path, fewer, {}, {});
  CHECK(error_text([&] { load_checkpoint(path, model->state_dict()); }) ==
        prefix + "fc.bias is missing (the model has it)");
  NamedTensors more = model->state_dict();
  more.emplace_back("fc2.weight", zeros({2, 2}));
  save_checkpoint(path, more, {}, {});
  CHECK(error_text([&] { load_checkpoint(path, model->state_dict()); }) ==
        prefix + "has an unexpected tensor fc2.weight (F32[2,2])");
  NamedTensors retyped = model->state_dict();
  retyped[5].second = zeros({});  // bn1.num_batches_tracked as F32
  save_checkpoint(path, retyped, {}, {});
  CHECK(error_text([&] { load_checkpoint(path, model->state_dict()); }) ==
        prefix + "bn1.num_batches_tracked is F32, the model expects I64");
  // Nothing was copied by the failed loads.
  const Tensor conv = *find_tensor(model->state_dict(), "conv1.weight");
  const std::vector<float> conv_before = conv.to_vector<float>();
  NamedTensors changed = model->state_dict();
  changed[0].second = zeros_like(conv);
  changed.emplace_back("extra", zeros({1}));
  save_checkpoint(path, changed, {}, {});
  CHECK(error_text([&] { load_checkpoint(path, model->state_dict()); }).find("unexpected tensor extra") !=
        std::string::npos);
  CHECK(conv.to_vector<float>() == conv_before);
}

TEST_CASE("a training checkpoint restores model, optimizer, metadata and RNG exactly") {
  const std::string dir = scratch("training");
  const std::string path = dir + "/last.safetensors";
  Generator g1(1), g2(2);
  auto model = make_model("resnet20", 1, 10, 28, g1);
  Sgd sgd(model->named_parameters(), {0.1, 0.9, 0, 5e-4, true});
  Generator data(4);
  Tensor x = randn({2, 1, 28, 28}, {}, &data);
  sum(model->forward(x)).backward();
  sgd.step();

  CheckpointInfo info;
  info.model = "resnet20";
  info.model_config = model_config_json(1, 10, 28);
  info.loss = "focal:gamma=2";
  info.epoch = 7;
  info.step = 1234;
  info.rng = {42, 987654321987ULL};
  info.extra = {{"optimizer", sgd.describe()}};
  save_checkpoint(path, model->state_dict(), sgd.state_dict(), info);

  auto restored = make_model("resnet20", 1, 10, 28, g2);
  Sgd restored_sgd(restored->named_parameters(), {0.1, 0.9, 0, 5e-4, true});
  const CheckpointInfo back = load_checkpoint(path, restored->state_dict(), restored_sgd.state_dict());
  CHECK(back.model == "resnet20");
  CHECK(back.model_config == R"({"in_channels":1,"input_size":28,"num_classes":10})");
  CHECK(back.loss == "focal:gamma=2");
  CHECK(back.epoch == 7);
  CHECK(back.step == 1234);
  CHECK(back.rng.seed == 42);
  CHECK(back.rng.counter == 987654321987ULL);
  CHECK(back.extra == info.extra);
  CHECK(read_checkpoint_info(path).step == 1234);
  const NamedTensors a = model->state_dict(), b = restored->state_dict();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(bytes_of(a[i].second) == bytes_of(b[i].second));
  }
  const NamedTensors sa = sgd.state_dict(), sb = restored_sgd.state_dict();
  for (size_t i = 0; i < sa.size(); ++i) CHECK(bytes_of(sa[i].second) == bytes_of(sb[i].second));
  CHECK(restored_sgd.step_count(0) == 1);
  // The optimizer's tensors sit under "optimizer." and are ignored when only the model is loaded.
  CHECK(SafetensorsFile::read(path).find("optimizer.conv1.weight.momentum_buffer") != nullptr);
  CHECK_NOTHROW(load_checkpoint(path, restored->state_dict()));
  // Metadata is validated too.
  CheckpointInfo clashing;
  clashing.extra = {{"epoch", "1"}};
  CHECK(error_text([&] { save_checkpoint(path, {}, {}, clashing); }) ==
        "checkpoint " + path + ": extra metadata key epoch is reserved");
  write_safetensors(path, {}, {{"format_version", "2"}});
  CHECK(error_text([&] { read_checkpoint_info(path); }) ==
        "checkpoint " + path + ": format_version 2 is newer than this kindling reads (1)");
  write_safetensors(path, {}, {{"epoch", "-3"}});
  CHECK(error_text([&] { read_checkpoint_info(path); }) ==
        "checkpoint " + path + ": metadata epoch='-3' is not a non-negative integer");
}

TEST_CASE("a checkpoint of a CUDA model loads into a CPU model and back") {
  if (!cuda_available()) {
    MESSAGE("no CUDA device: skipping the cross-device checkpoint check");
    return;
  }
  const std::string dir = scratch("cuda");
  const std::string path = dir + "/cuda.safetensors";
  Generator g1(1), g2(2), g3(3);
  auto on_gpu = make_model("resnet20", 3, 10, 32, g1);
  on_gpu->to(Device::cuda());
  Sgd sgd(on_gpu->named_parameters(), {0.1, 0.9, 0, 0, false});
  Generator data(4);
  sum(on_gpu->forward(randn({2, 3, 32, 32}, {}, &data).to(Device::cuda()))).backward();
  sgd.step();
  save_checkpoint(path, on_gpu->state_dict(), sgd.state_dict(), {});

  auto on_cpu = make_model("resnet20", 3, 10, 32, g2);
  Sgd cpu_sgd(on_cpu->named_parameters(), {0.1, 0.9, 0, 0, false});
  load_checkpoint(path, on_cpu->state_dict(), cpu_sgd.state_dict());
  auto back_on_gpu = make_model("resnet20", 3, 10, 32, g3);
  back_on_gpu->to(Device::cuda());
  load_checkpoint(path, back_on_gpu->state_dict());
  const NamedTensors a = on_gpu->state_dict(), b = on_cpu->state_dict(), c = back_on_gpu->state_dict();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(b[i].second.device() == Device::cpu());
    CHECK(c[i].second.device() == a[i].second.device());
    CHECK(bytes_of(a[i].second.to(Device::cpu())) == bytes_of(b[i].second));
    CHECK(bytes_of(c[i].second.to(Device::cpu())) == bytes_of(b[i].second));
  }
}
