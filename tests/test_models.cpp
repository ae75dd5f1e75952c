// nn/ models: parameter counts against the papers and torchvision, PyTorch's state_dict names and
// order, forward shapes of every model, torchvision's initialisation, and a CUDA model against the
// CPU one.
#include "core/backend.h"
#include "nn/models.h"
#include "ops/ops.h"
#include "tests/test_nn_util.h"
#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace kindling;
using namespace kindling::test;

namespace {

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s / double(v.size());
}
double std_of(const std::vector<float>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}

}  // namespace

TEST_CASE("parameter counts match the papers and torchvision") {
  struct Expected {
    const char* name;
    int64_t input_size, count;
  };
  const Expected expected[] = {
      {"resnet20", 32, 269722},    {"resnet32", 32, 464154},   {"resnet44", 32, 658586},
      {"resnet56", 32, 853018},    {"resnet110", 32, 1727962}, {"resnet18", 32, 11173962},
      {"resnet18", 224, 11181642}, {"resnet34", 32, 21282122}, {"resnet50", 224, 23528522},
      {"vgg11", 32, 9231114},      {"vgg16", 32, 14728266}};
  for (const Expected& e : expected) {
    INFO(e.name, " at ", e.input_size);
    CHECK(make_model(e.name, 3, 10, e.input_size)->num_parameters() == e.count);
  }
  // One input channel: only the stem changes (16*3*3 fewer weights per removed channel x2).
  CHECK(make_model("resnet20", 1, 10)->num_parameters() == 269722 - 2 * 16 * 9);
  CHECK(make_model("resnet20", 3, 100)->num_parameters() == 269722 + 90 * 65);
  CHECK(error_text([] { make_model("resnet21", 3, 10); }).find("unknown model 'resnet21'") !=
        std::string::npos);
}

TEST_CASE("state_dict uses PyTorch's names and order") {
  auto resnet20 = make_model("resnet20", 3, 10);
  const NamedTensors state = resnet20->state_dict();
  const std::vector<std::string> first = {
      "conv1.weight",          "bn1.weight",         "bn1.bias",
      "bn1.running_mean",      "bn1.running_var",    "bn1.num_batches_tracked",
      "layer1.0.conv1.weight", "layer1.0.bn1.weight"};
  const std::vector<std::string> names = names_of(state);
  REQUIRE(names.size() == 116);  // torch's state_dict of the same model has 116 entries
  CHECK(std::equal(first.begin(), first.end(), names.begin()));
  CHECK(names[names.size() - 2] == "fc.weight");
  CHECK(names.back() == "fc.bias");
  for (const char* name : {"layer1.0.bn1.running_mean", "layer2.0.conv1.weight", "layer3.2.bn2.bias",
                           "layer3.2.bn2.num_batches_tracked"})
    CHECK(has_name(state, name));
  CHECK(named(state, "layer2.0.conv1.weight").shape() == Shape{32, 16, 3, 3});
  CHECK(named(state, "fc.weight").shape() == Shape{10, 64});
  CHECK(named(state, "bn1.num_batches_tracked").dtype() == DType::i64);
  CHECK(resnet20->named_parameters().size() == 59);  // 19 convs, 19 BNs x2, fc x2
  CHECK(resnet20->named_buffers().size() == 57);

  const NamedTensors r18 = make_model("resnet18", 3, 10, 32)->state_dict();
  CHECK(has_name(r18, "layer2.0.downsample.0.weight"));
  CHECK(has_name(r18, "layer2.0.downsample.1.running_var"));
  CHECK(!has_name(r18, "layer1.0.downsample.0.weight"));
  CHECK(named(r18, "conv1.weight").shape() == Shape{64, 3, 3, 3});
  CHECK(named(make_model("resnet18", 3, 10, 64)->state_dict(), "conv1.weight").shape() == Shape{64, 3, 7, 7});
  const NamedTensors r50 = make_model("resnet50", 3, 10, 32)->state_dict();
  CHECK(named(r50, "layer1.0.conv3.weight").shape() == Shape{256, 64, 1, 1});
  CHECK(named(r50, "layer1.0.downsample.0.weight").shape() == Shape{256, 64, 1, 1});
  CHECK(named(r50, "layer4.2.conv2.weight").shape() == Shape{512, 512, 3, 3});
  CHECK(named(r50, "fc.weight").shape() == Shape{10, 2048});
  const NamedTensors vgg = make_model("vgg11", 3, 10)->state_dict();
  CHECK(named(vgg, "features.0.weight").shape() == Shape{64, 3, 3, 3});
  CHECK(named(vgg, "features.1.running_mean").shape() == Shape{64});
  CHECK(named(vgg, "features.4.weight").shape() == Shape{128, 64, 3, 3});  // after the first pool
  CHECK(named(vgg, "classifier.weight").shape() == Shape{10, 512});
}

TEST_CASE("every model maps a batch to logits, for 1 and 3 channels and any size") {
  struct Case {
    const char* name;
    int64_t channels, size, classes;
  };
  const Case cases[] = {{"resnet20", 3, 32, 10}, {"resnet20", 1, 28, 10}, {"resnet32", 3, 32, 100},
                        {"resnet18", 3, 32, 10}, {"resnet18", 1, 64, 7},  {"resnet34", 1, 28, 10},
                        {"resnet50", 3, 32, 10}, {"vgg11", 1, 28, 10},    {"vgg16", 3, 32, 10}};
  Generator gen(5);
  for (const Case& c : cases) {
    INFO(c.name, " ", c.channels, "x", c.size, "x", c.size);
    auto model = make_model(c.name, c.channels, c.classes, c.size);
    Tensor x = randn({2, c.channels, c.size, c.size}, {}, &gen);
    Tensor logits = model->forward(x);
    CHECK(logits.shape() == Shape{2, c.classes});
    for (float v : logits.to_vector<float>()) CHECK(std::isfinite(v));
  }
  auto model = make_model("resnet20", 3, 10);
  const std::string error = error_text([&] { model->forward(zeros({3, 32, 32})); });
  CHECK(error.find("expected input [N,C,H,W]") != std::string::npos);
}

TEST_CASE("initialisation follows torchvision and is reproducible") {
  Generator a(7), b(7), c(8);
  auto m1 = make_model("resnet18", 3, 10, 32, a);
  auto m2 = make_model("resnet18", 3, 10, 32, b);
  auto m3 = make_model("resnet18", 3, 10, 32, c);
  const NamedTensors s1 = m1->state_dict(), s2 = m2->state_dict(), s3 = m3->state_dict();
  const std::vector<float> w1 = named(s1, "layer4.1.conv2.weight").to_vector<float>();
  CHECK(w1 == named(s2, "layer4.1.conv2.weight").to_vector<float>());
  CHECK(w1 != named(s3, "layer4.1.conv2.weight").to_vector<float>());
  // Kaiming normal, fan-out: std = sqrt(2 / (512 * 9)); 2.4M samples put the estimate within 1%.
  CHECK(std::fabs(mean_of(w1)) < 1e-3);
  CHECK(std_of(w1) == doctest::Approx(std::sqrt(2.0 / (512 * 9))).epsilon(0.01));
  // BatchNorm: weight 1, bias 0, running statistics 0 and 1.
  for (float v : named(s1, "layer4.1.bn2.weight").to_vector<float>()) CHECK(v == 1.0f);
  for (float v : named(s1, "layer4.1.bn2.bias").to_vector<float>()) CHECK(v == 0.0f);
  for (float v : named(s1, "layer4.1.bn2.running_var").to_vector<float>()) CHECK(v == 1.0f);
  // Linear: PyTorch's default, U(±1/sqrt(fan_in)) for weight and bias.
  const double bound = 1.0 / std::sqrt(512.0);
  const std::vector<float> fc = named(s1, "fc.weight").to_vector<float>();
  CHECK(*std::max_element(fc.begin(), fc.end()) <= bound);
  CHECK(*std::min_element(fc.begin(), fc.end()) >= -bound);
  CHECK(*std::max_element(fc.begin(), fc.end()) > 0.95 * bound);
  CHECK(std_of(fc) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.05));
  for (float v : named(s1, "fc.bias").to_vector<float>()) CHECK(std::fabs(v) <= bound);
}

TEST_CASE("a CUDA model starts from the CPU model's weights and computes the same logits") {
  if (!cuda_available()) {
    MESSAGE("no CUDA device: skipping the CPU/CUDA model check");
    return;
  }
  Generator g1(9), g2(9), data(10);
  auto cpu_model = make_model("resnet20", 3, 10, 32, g1);
  auto gpu_model = make_model("resnet20", 3, 10, 32, g2);
  gpu_model->to(Device::cuda());
  CHECK(gpu_model->device() == Device::cuda());
  const NamedTensors a = cpu_model->state_dict(), b = gpu_model->state_dict();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    if (a[i].second.dtype() == DType::f32)
      CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
  }
  CHECK(find_tensor(b, "bn1.num_batches_tracked")->device() == Device::cpu());  // a host counter
  const Tensor x = randn({4, 3, 32, 32}, {}, &data);
  const std::vector<float> on_cpu = cpu_model->forward(x).to_vector<float>();
  const std::vector<float> on_gpu = gpu_model->forward(x.to(Device::cuda())).to_vector<float>();
  for (size_t i = 0; i < on_cpu.size(); ++i) CHECK(on_gpu[i] == doctest::Approx(on_cpu[i]).epsilon(1e-3));
}
