// nn/: module state and names, parameter counts, initialisation, train/eval behaviour, forward
// shapes of every model, optimizers against hand-computed updates, gradient clipping, schedules.
#include "core/autograd.h"
#include "core/backend.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/resnet.h"
#include "nn/schedule.h"
#include "ops/ops.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace kindling;

namespace {

std::vector<std::string> names_of(const NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : tensors) names.push_back(name);
  return names;
}

bool has_name(const NamedTensors& tensors, const std::string& name) { return find_tensor(tensors, name) != nullptr; }

const Tensor& named(const NamedTensors& tensors, const std::string& name) {
  const Tensor* t = find_tensor(tensors, name);
  INFO("tensor ", name);
  REQUIRE(t != nullptr);
  return *t;
}

template <typename Fn>
std::string error_text(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

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

// ---------------------------------------------------------------------------------------------
// Models: counts, names, shapes

TEST_CASE("parameter counts match the papers and torchvision") {
  struct Expected {
    const char* name;
    int64_t input_size, count;
  };
  const Expected expected[] = {
      {"resnet20", 32, 269722},   {"resnet32", 32, 464154},     {"resnet44", 32, 658586},
      {"resnet56", 32, 853018},   {"resnet110", 32, 1727962},   {"resnet18", 32, 11173962},
      {"resnet18", 224, 11181642}, {"resnet34", 32, 21282122},  {"resnet50", 224, 23528522},
      {"vgg11", 32, 9231114},     {"vgg16", 32, 14728266}};
  for (const Expected& e : expected) {
    INFO(e.name, " at ", e.input_size);
    CHECK(make_model(e.name, 3, 10, e.input_size)->num_parameters() == e.count);
  }
  // One input channel: only the stem changes (16*3*3 fewer weights per removed channel x2).
  CHECK(make_model("resnet20", 1, 10)->num_parameters() == 269722 - 2 * 16 * 9);
  CHECK(make_model("resnet20", 3, 100)->num_parameters() == 269722 + 90 * 65);
  CHECK(error_text([] { make_model("resnet21", 3, 10); }).find("unknown model 'resnet21'") != std::string::npos);
}

TEST_CASE("state_dict uses PyTorch's names and order") {
  auto resnet20 = make_model("resnet20", 3, 10);
  const NamedTensors state = resnet20->state_dict();
  const std::vector<std::string> first = {"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                          "bn1.running_var", "bn1.num_batches_tracked",
                                          "layer1.0.conv1.weight", "layer1.0.bn1.weight"};
  const std::vector<std::string> names = names_of(state);
  REQUIRE(names.size() == 116);   // torch's state_dict of the same model has 116 entries
  CHECK(std::equal(first.begin(), first.end(), names.begin()));
  CHECK(names[names.size() - 2] == "fc.weight");
  CHECK(names.back() == "fc.bias");
  for (const char* name : {"layer1.0.bn1.running_mean", "layer2.0.conv1.weight", "layer3.2.bn2.bias",
                           "layer3.2.bn2.num_batches_tracked"})
    CHECK(has_name(state, name));
  CHECK(named(state, "layer2.0.conv1.weight").shape() == Shape{32, 16, 3, 3});
  CHECK(named(state, "fc.weight").shape() == Shape{10, 64});
  CHECK(named(state, "bn1.num_batches_tracked").dtype() == DType::i64);
  CHECK(resnet20->named_parameters().size() == 59);   // 19 convs, 19 BNs x2, fc x2
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
  CHECK(named(vgg, "features.4.weight").shape() == Shape{128, 64, 3, 3});   // after the first pool
  CHECK(named(vgg, "classifier.weight").shape() == Shape{10, 512});
}

TEST_CASE("every model maps a batch to logits, for 1 and 3 channels and any size") {
  struct Case {
    const char* name;
    int64_t channels, size, classes;
  };
  const Case cases[] = {{"resnet20", 3, 32, 10}, {"resnet20", 1, 28, 10}, {"resnet32", 3, 32, 100},
                        {"resnet18", 3, 32, 10}, {"resnet18", 1, 64, 7},  {"resnet34", 1, 28, 10},
                        {"resnet50", 3, 32, 10}, {"vgg11", 1, 28, 10},   {"vgg16", 3, 32, 10}};
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
  CHECK(error_text([&] { model->forward(zeros({3, 32, 32})); }).find("expected input [N,C,H,W]") != std::string::npos);
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

// ---------------------------------------------------------------------------------------------
// Module behaviour

TEST_CASE("train() and eval() switch BatchNorm between batch and running statistics") {
  BatchNorm2d bn(2, 1e-5, 0.1);
  // Channel 0 holds 1..8, channel 1 holds 10, 20, ..., 80: batch of 2, 2x2 planes.
  std::vector<float> values(16);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 4; ++i) values[size_t(n * 8 + c * 4 + i)] = float((n * 4 + i + 1) * (c == 0 ? 1 : 10));
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
  CHECK(bn.running_mean().to_vector<float>() == running_mean);   // eval leaves the statistics alone
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
  CHECK(error_text([&] { target->load_state_dict(missing); }) == "load_state_dict: bn1.running_mean is missing");
  NamedTensors extra = source->state_dict();
  extra.emplace_back("fc2.weight", zeros({2}));
  CHECK(error_text([&] { target->load_state_dict(extra); }) == "load_state_dict: unexpected tensor fc2.weight");
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
  CHECK(text.find("(conv1): Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)") != std::string::npos);
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
    CHECK(moved[i].second.is_same(handles[i].second));   // the same tensor, as in PyTorch
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
  if (cuda_available()) devices.push_back(Device::cuda());
  else MESSAGE("no CUDA GPU: Module::to checked CPU to CPU only (" << cuda_unavailable_reason() << ")");
  for (const Device device : devices) {
    INFO("device ", device.str());
    const auto before = two_steps_with_optimizer(device, true);
    const auto after = two_steps_with_optimizer(device, false);
    REQUIRE(before.size() == start.size());
    for (size_t i = 0; i < before.size(); ++i) {
      INFO(start[i].first);
      CHECK(before[i] != start[i].second.to_vector<float>());   // every parameter trained
      double diff = 0, norm = 0;
      for (size_t j = 0; j < before[i].size(); ++j) {
        diff += (double(before[i][j]) - after[i][j]) * (double(before[i][j]) - after[i][j]);
        norm += double(after[i][j]) * after[i][j];
      }
      CHECK(std::sqrt(diff) <= 1e-5 * std::sqrt(norm));   // and as far as one built after the move
    }
  }
}

TEST_CASE("move_to_device_in_place keeps the tensor and refuses a non-leaf") {
  Tensor leaf = ones({2, 3});
  leaf.set_requires_grad(true);
  sum(leaf).backward();
  const void* data = leaf.data_ptr();
  const Tensor alias = leaf;
  move_to_device_in_place(alias, Device::cpu());   // already there: nothing moves, nothing copies
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

// ---------------------------------------------------------------------------------------------
// Optimizers

namespace {
// A Linear(2 -> 1) whose parameters are set to known values and whose gradient is a known vector.
struct Toy {
  Linear layer{2, 1};
  Toy() {
    NoGradGuard no_grad;
    Tensor w = layer.weight(), b = layer.bias();
    w.copy_(from_vector<float>({0.5f, -1.0f}, {1, 2}));
    b.copy_(from_vector<float>({0.25f}, {1}));
  }
  // Sets grad = d/dparams of sum(layer(x)) * scale, i.e. weight grad = x * scale, bias grad = scale.
  void backward(float x0, float x1, float scale) {
    layer.zero_grad();
    Tensor loss = mul(sum(layer.forward(from_vector<float>({x0, x1}, {1, 2}))), double(scale));
    loss.backward();
  }
  std::vector<float> weight() const { return layer.weight().to_vector<float>(); }
  float bias() const { return layer.bias().to_vector<float>()[0]; }
};

// Hand-written torch.optim.SGD on one scalar parameter, in double.
struct HandSgd {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  double buf = 0;
  bool first = true;
  double step(double p, double g) {
    g += weight_decay * p;
    if (momentum != 0) {
      buf = first ? g : momentum * buf + (1 - dampening) * g;
      first = false;
      g = nesterov ? g + momentum * buf : buf;
    }
    return p - lr * g;
  }
};
}  // namespace

TEST_CASE("SGD updates match the PyTorch formulas, with momentum, dampening, Nesterov and decay") {
  struct Config {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (const Config& cfg : {Config{0, 0, 0, false}, Config{0.9, 0, 5e-4, false}, Config{0.9, 0.1, 1e-2, false},
                            Config{0.9, 0, 1e-2, true}}) {
    INFO("momentum ", cfg.momentum, " dampening ", cfg.dampening, " wd ", cfg.weight_decay, " nesterov ", cfg.nesterov);
    Toy toy;
    Sgd sgd(toy.layer.named_parameters(), {0.1, cfg.momentum, cfg.dampening, cfg.weight_decay, cfg.nesterov});
    HandSgd w0{0.1, cfg.momentum, cfg.dampening, cfg.weight_decay, cfg.nesterov};
    HandSgd b{0.1, cfg.momentum, cfg.dampening, cfg.weight_decay, cfg.nesterov};
    double p_w0 = 0.5, p_b = 0.25;
    const float inputs[3][3] = {{1.0f, 2.0f, 1.0f}, {-0.5f, 3.0f, 2.0f}, {2.0f, -1.0f, 0.5f}};
    for (const auto& in : inputs) {
      toy.backward(in[0], in[1], in[2]);
      sgd.step();
      p_w0 = w0.step(p_w0, double(in[0]) * in[2]);
      p_b = b.step(p_b, double(in[2]));
      CHECK(toy.weight()[0] == doctest::Approx(p_w0).epsilon(1e-6));
      CHECK(toy.bias() == doctest::Approx(p_b).epsilon(1e-6));
    }
    CHECK(sgd.step_count(0) == 3);
    CHECK(has_name(sgd.state_dict(), "weight.step"));
    CHECK(has_name(sgd.state_dict(), "bias.momentum_buffer") == (cfg.momentum != 0));
  }
  Toy toy;
  CHECK(error_text([&] { Sgd(toy.layer.named_parameters(), {0.1, 0.0, 0.0, 0.0, true}); })
            .find("Nesterov momentum needs momentum > 0") != std::string::npos);
}

namespace {
// One float product, sum, quotient or square root, each rounded on its own: a product goes through
// a volatile so that this file's compiler (which contracts) cannot fuse it into the next sum.
float mul_f(float a, float b) {
  volatile float product = a * b;
  return product;
}
float add_f(float a, float b) { return a + b; }
float sub_f(float a, float b) { return a - b; }
float div_f(float a, float b) { return a / b; }
float sqrt_f(float a) { return std::sqrt(a); }
}  // namespace

TEST_CASE("the fused SGD and AdamW kernels round every product and sum (no FMA), as on CUDA") {
  // ops/cpu/optim.cpp and ops/cuda/optim.cu are compiled without contraction, so both backends
  // compute these expressions operation by operation and agree bit for bit (tests/test_cuda.cpp).
  Generator gen(31);
  const std::vector<float> p0 = rand({1000}, {}, &gen, -2.0, 2.0).to_vector<float>();
  const std::vector<float> g = rand({1000}, {}, &gen, -2.0, 2.0).to_vector<float>();
  for (const bool nesterov : {false, true}) {
    Tensor param = from_vector(p0, {1000}), buffer = zeros({1000});
    SgdArgs args{0.1f, 0.9f, nesterov ? 0.0f : 0.1f, 5e-4f, nesterov, true};
    std::vector<float> p = p0, buf(1000, 0.0f);
    for (int step = 0; step < 3; ++step) {
      args.first_step = step == 0;
      cpu_backend().sgd_step(param, from_vector(g, {1000}), buffer, args);
      for (size_t i = 0; i < p.size(); ++i) {
        float d = add_f(g[i], mul_f(args.weight_decay, p[i]));
        const float b = step == 0 ? d : add_f(mul_f(args.momentum, buf[i]), mul_f(1.0f - args.dampening, d));
        buf[i] = b;
        d = nesterov ? add_f(d, mul_f(args.momentum, b)) : b;
        p[i] = sub_f(p[i], mul_f(args.lr, d));
      }
    }
    INFO("nesterov ", nesterov);
    CHECK(param.to_vector<float>() == p);
    CHECK(buffer.to_vector<float>() == buf);
  }
  Tensor param = from_vector(p0, {1000}), m_state = zeros({1000}), v_state = zeros({1000});
  std::vector<float> p = p0, m(1000, 0.0f), v(1000, 0.0f);
  AdamWArgs args{1e-2f};
  for (int64_t step = 1; step <= 3; ++step) {
    args.step = step;
    cpu_backend().adamw_step(param, from_vector(g, {1000}), m_state, v_state, args);
    const float step_size = float(double(args.lr) / (1.0 - std::pow(double(args.beta1), double(step))));
    const float inv_sqrt_bias2 = float(1.0 / std::sqrt(1.0 - std::pow(double(args.beta2), double(step))));
    const float decay = sub_f(1.0f, mul_f(args.lr, args.weight_decay));
    for (size_t i = 0; i < p.size(); ++i) {
      m[i] = add_f(mul_f(args.beta1, m[i]), mul_f(1.0f - args.beta1, g[i]));
      v[i] = add_f(mul_f(args.beta2, v[i]), mul_f(mul_f(1.0f - args.beta2, g[i]), g[i]));
      p[i] = sub_f(mul_f(p[i], decay),
                   div_f(mul_f(step_size, m[i]), add_f(mul_f(sqrt_f(v[i]), inv_sqrt_bias2), args.eps)));
    }
  }
  CHECK(param.to_vector<float>() == p);
  CHECK(m_state.to_vector<float>() == m);
  CHECK(v_state.to_vector<float>() == v);
}

TEST_CASE("AdamW updates match the decoupled-decay formula") {
  Toy toy;
  AdamW adamw(toy.layer.named_parameters(), {0.01, 0.9, 0.999, 1e-8, 0.1});
  double p = 0.5, m = 0, v = 0;
  const float grads[3] = {1.0f, -2.0f, 0.5f};
  for (int t = 1; t <= 3; ++t) {
    toy.backward(grads[t - 1], 0.0f, 1.0f);
    adamw.step();
    const double g = grads[t - 1];
    p -= 0.01 * 0.1 * p;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    const double m_hat = m / (1 - std::pow(0.9, t)), v_hat = v / (1 - std::pow(0.999, t));
    p -= 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8);
    CHECK(toy.weight()[0] == doctest::Approx(p).epsilon(1e-5));
  }
  CHECK(toy.weight()[1] == doctest::Approx(-1.0 * std::pow(1 - 0.001, 3)).epsilon(1e-6));   // zero grad: decay only
  const NamedTensors state = adamw.state_dict();
  CHECK(names_of(state) == std::vector<std::string>{"weight.step", "bias.step", "weight.exp_avg",
                                                    "weight.exp_avg_sq", "bias.exp_avg", "bias.exp_avg_sq"});
  CHECK(named(state, "weight.exp_avg").to_vector<float>()[0] == doctest::Approx(m).epsilon(1e-5));
}

TEST_CASE("parameters without a gradient are skipped, and optimizer state restores exactly") {
  Toy uninterrupted, resumed;
  SgdOptions options{0.05, 0.9, 0, 1e-3, true};
  Sgd sgd_a(uninterrupted.layer.named_parameters(), options);
  uninterrupted.backward(1, 2, 1);
  sgd_a.step();
  // Checkpoint after one step, as a resume would.
  NamedTensors saved;
  for (const auto& [name, t] : sgd_a.state_dict()) saved.emplace_back(name, t.clone());
  NamedTensors saved_params;
  for (const auto& [name, t] : uninterrupted.layer.state_dict()) saved_params.emplace_back(name, t.detach().clone());
  uninterrupted.backward(-1, 0.5, 2);
  sgd_a.step();

  resumed.layer.load_state_dict(saved_params);
  Sgd sgd_b(resumed.layer.named_parameters(), options);
  sgd_b.load_state_dict(saved);
  CHECK(sgd_b.step_count(0) == 1);
  resumed.backward(-1, 0.5, 2);
  sgd_b.step();
  CHECK(resumed.weight() == uninterrupted.weight());
  CHECK(resumed.bias() == uninterrupted.bias());

  // No gradient: no change, no step counted.
  resumed.layer.zero_grad();
  const std::vector<float> before = resumed.weight();
  sgd_b.step();
  CHECK(resumed.weight() == before);
  CHECK(sgd_b.step_count(0) == 2);
  NamedTensors bad = saved;
  bad.pop_back();
  CHECK(error_text([&] { sgd_b.load_state_dict(bad); }).find("optimizer state: ") == 0);
}

TEST_CASE("clip_grad_norm scales all gradients by the global norm") {
  Tensor a = zeros({2}).set_requires_grad(true), b = zeros({1}).set_requires_grad(true), c = zeros({1});
  c.set_requires_grad(true);
  a.set_grad(from_vector<float>({3, 4}, {2}));
  b.set_grad(from_vector<float>({12}, {1}));
  CHECK(clip_grad_norm({a, b, c}, 20.0) == doctest::Approx(13.0));
  CHECK(a.grad().to_vector<float>() == std::vector<float>{3, 4});   // below the limit: unchanged
  CHECK(clip_grad_norm({a, b, c}, 6.5) == doctest::Approx(13.0));
  const double scale = 6.5 / (13.0 + 1e-6);
  CHECK(a.grad().to_vector<float>()[1] == doctest::Approx(4 * scale));
  CHECK(b.grad().to_vector<float>()[0] == doctest::Approx(12 * scale));
  CHECK(clip_grad_norm({a, b, c}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
}

// ---------------------------------------------------------------------------------------------
// Schedules (reference values from torch.optim.lr_scheduler, base lr 0.1)

TEST_CASE("step and multistep schedules") {
  StepSchedule step(0.1, 30, 0.1);
  CHECK(step.lr(0, 0) == doctest::Approx(0.1));
  CHECK(step.lr(29, 99) == doctest::Approx(0.1));
  CHECK(step.lr(30, 0) == doctest::Approx(0.01));
  CHECK(step.lr(90, 0) == doctest::Approx(1e-4));
  MultiStepSchedule multi(0.1, {100, 150}, 0.1);
  CHECK(multi.lr(99, 390) == doctest::Approx(0.1));
  CHECK(multi.lr(100, 0) == doctest::Approx(0.01));
  CHECK(multi.lr(149, 0) == doctest::Approx(0.01));
  CHECK(multi.lr(150, 0) == doctest::Approx(0.001));
  CHECK(multi.lr(199, 0) == doctest::Approx(0.001));
}

TEST_CASE("cosine schedule matches CosineAnnealingLR at epoch boundaries") {
  CosineSchedule cosine(0.1, 200, 390);
  CHECK(cosine.lr(0, 0) == doctest::Approx(0.1));
  CHECK(cosine.lr(50, 0) == doctest::Approx(0.0853553390593274));
  CHECK(cosine.lr(100, 0) == doctest::Approx(0.05));
  CHECK(cosine.lr(150, 0) == doctest::Approx(0.014644660940672632));
  CHECK(cosine.lr(200, 0) == doctest::Approx(0.0));
  CHECK(cosine.lr(250, 0) == doctest::Approx(0.0));
  // Within an epoch it moves smoothly between the epoch values.
  CHECK(cosine.lr(100, 195) < cosine.lr(100, 0));
  CHECK(cosine.lr(100, 195) > cosine.lr(101, 0));
  CHECK(CosineSchedule(0.1, 10, 1, 0.001).lr(10, 0) == doctest::Approx(0.001));
}

TEST_CASE("linear warm-up composes with other schedules") {
  auto warm = make_schedule("cosine:warmup=5,warmup_start=0.1", 0.1, 100, 10);
  const CosineSchedule cosine(0.1, 100, 10);
  CHECK(warm->lr(0, 0) == doctest::Approx(0.1 * 0.1));
  CHECK(warm->lr(2, 5) == doctest::Approx(cosine.lr(2, 5) * (0.1 + 0.9 * 2.5 / 5)));
  CHECK(warm->lr(5, 0) == doctest::Approx(cosine.lr(5, 0)));
  CHECK(warm->lr(60, 3) == doctest::Approx(cosine.lr(60, 3)));
  auto warm_steps = make_schedule("multistep:milestones=10/20,gamma=0.5,warmup=2,warmup_start=0", 0.2, 30, 4);
  CHECK(warm_steps->lr(0, 0) == doctest::Approx(0.0));
  CHECK(warm_steps->lr(1, 0) == doctest::Approx(0.1));
  CHECK(warm_steps->lr(15, 0) == doctest::Approx(0.1));
  CHECK(warm_steps->lr(25, 0) == doctest::Approx(0.05));
}

TEST_CASE("one-cycle schedule matches OneCycleLR") {
  OneCycleSchedule one_cycle(0.1, 10, 100);   // 1000 steps, pct_start 0.3, div 25, final div 1e4
  CHECK(one_cycle.lr(0, 0) == doctest::Approx(0.004));
  CHECK(one_cycle.lr(0, 1) == doctest::Approx(0.00400264950421679));
  CHECK(one_cycle.lr(1, 50) == doctest::Approx(0.05225216681225469));
  CHECK(one_cycle.lr(2, 99) == doctest::Approx(0.1));
  CHECK(one_cycle.lr(3, 0) == doctest::Approx(0.09999949645161448));
  CHECK(one_cycle.lr(5, 0) == doctest::Approx(0.08099881015401794));
  CHECK(one_cycle.lr(9, 99) == doctest::Approx(4e-7));
  auto parsed = make_schedule("onecycle:pct_start=0.3", 0.1, 10, 100);
  CHECK(parsed->lr(1, 50) == doctest::Approx(0.05225216681225469));
}

TEST_CASE("make_schedule parses specs and names bad ones") {
  CHECK(make_schedule("constant", 0.3, 10, 5)->lr(7, 2) == doctest::Approx(0.3));
  CHECK(make_schedule("step:size=3,gamma=0.5", 1.0, 10, 5)->lr(7, 0) == doctest::Approx(0.25));
  CHECK(make_schedule("multistep", 1.0, 100, 5)->lr(75, 0) == doctest::Approx(0.01));   // default 50/75
  CHECK(error_text([] { make_schedule("cosin", 0.1, 10, 5); }) ==
        "schedule 'cosin': unknown name 'cosin' (valid: constant, step, multistep, cosine, onecycle)");
  CHECK(error_text([] { make_schedule("step:gama=0.1", 0.1, 10, 5); }) ==
        "schedule 'step:gama=0.1': unknown key 'gama' for step");
  CHECK(error_text([] { make_schedule("step:size=x", 0.1, 10, 5); }) == "schedule 'step:size=x': size=x is not a number");
  CHECK(error_text([] { make_schedule("onecycle:warmup=2", 0.1, 10, 5); }) ==
        "schedule 'onecycle:warmup=2': unknown key 'warmup' for onecycle");
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
  CHECK(find_tensor(b, "bn1.num_batches_tracked")->device() == Device::cpu());   // a host counter
  const Tensor x = randn({4, 3, 32, 32}, {}, &data);
  const std::vector<float> on_cpu = cpu_model->forward(x).to_vector<float>();
  const std::vector<float> on_gpu = gpu_model->forward(x.to(Device::cuda())).to_vector<float>();
  for (size_t i = 0; i < on_cpu.size(); ++i) CHECK(on_gpu[i] == doctest::Approx(on_cpu[i]).epsilon(1e-3));
}
