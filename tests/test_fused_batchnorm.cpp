// batch_norm_relu, BatchNorm + residual add + ReLU in one op, against the composition it replaces:
// relu(add(batch_norm(x), residual)). On the CPU the fused kernels do the composition's float
// arithmetic, so outputs, running statistics and gradients are required to be equal bit for bit;
// the reference backend's fused methods agree with the fast ones to 1e-5; ResNets trained three
// SGD steps with and without the fusion end with the same parameters and buffers (within 1e-6,
// relative to each tensor's norm). The CUDA kernels are compared with the CPU when a GPU is present
// (and by the registry's parity walk).
#include "core/autograd.h"
#include "core/backend.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/resnet.h"
#include "ops/cpu/reference/reference_backend.h"
#include "ops/ops.h"
#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace kindling;

namespace {

// The same values, bit for bit (NaNs equal to NaNs).
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

struct Inputs {
  Tensor x, weight, bias, residual, running_mean, running_var;
};

// Leaves requiring grad, drawn from `seed`; residual only when asked for.
Inputs draw(const Shape& shape, bool with_residual, uint64_t seed) {
  Generator gen(seed);
  const int64_t C = shape[1];
  Inputs in;
  in.x = randn(shape, {}, &gen, 0.3, 1.5).set_requires_grad(true);
  in.weight = randn({C}, {}, &gen, 1.0, 0.5).set_requires_grad(true);
  in.bias = randn({C}, {}, &gen, 0.0, 0.5).set_requires_grad(true);
  if (with_residual) in.residual = randn(shape, {}, &gen).set_requires_grad(true);
  in.running_mean = randn({C}, {}, &gen, 0.0, 0.2);
  in.running_var = rand({C}, {}, &gen, 0.5, 1.5);
  return in;
}

// Fresh leaves with in's values (its own graph and running statistics).
Inputs copy_of(const Inputs& in) {
  auto leaf = [](const Tensor& t) {
    return t.defined() ? t.detach().clone().set_requires_grad(t.requires_grad()) : Tensor();
  };
  return {leaf(in.x),        leaf(in.weight),         leaf(in.bias),
          leaf(in.residual), in.running_mean.clone(), in.running_var.clone()};
}

struct Run {
  Tensor y;
  Inputs in;  // after backward: grads on the leaves, running statistics updated
};

// One forward and backward of L = sum(y * r), fused or composed.
Run run(const Inputs& original, bool training, bool fused, const Tensor& r) {
  Run out{Tensor(), copy_of(original)};
  Inputs& in = out.in;
  if (fused) {
    out.y = batch_norm_relu(in.x, in.weight, in.bias, in.running_mean, in.running_var, training, 0.1, 1e-5,
                            in.residual);
  } else {
    Tensor y = batch_norm(in.x, in.weight, in.bias, in.running_mean, in.running_var, training, 0.1, 1e-5);
    if (in.residual.defined()) y = add(y, in.residual);
    out.y = relu(y);
  }
  sum(mul(out.y, r)).backward();
  return out;
}

void check_fused_equals_composition(const Shape& shape, bool with_residual, bool training, uint64_t seed) {
  CAPTURE(shape_str(shape));
  CAPTURE(with_residual);
  CAPTURE(training);
  const Inputs in = draw(shape, with_residual, seed);
  Generator gen(seed + 1);
  const Tensor r = randn(shape, {}, &gen);
  const Run fused = run(in, training, true, r), composed = run(in, training, false, r);
  CHECK(same_bits(fused.y, composed.y));
  CHECK(same_bits(fused.in.running_mean, composed.in.running_mean));
  CHECK(same_bits(fused.in.running_var, composed.in.running_var));
  CHECK(same_bits(fused.in.x.grad(), composed.in.x.grad()));
  CHECK(same_bits(fused.in.weight.grad(), composed.in.weight.grad()));
  CHECK(same_bits(fused.in.bias.grad(), composed.in.bias.grad()));
  if (with_residual) CHECK(same_bits(fused.in.residual.grad(), composed.in.residual.grad()));
  // The ReLU did cut: some outputs are zero, some positive.
  const std::vector<float> y = fused.y.to_vector<float>();
  int zeros = 0;
  for (float v : y) zeros += v == 0.0f;
  CHECK(zeros > 0);
  CHECK(zeros < int(y.size()));
}

TEST_CASE("batch_norm_relu: training equals relu(batch_norm + residual) bit for bit on the CPU") {
  // 40x40 planes pass the backward's 1024-float chunk, 5x7 ones end off the 16-float vector step.
  for (const Shape& shape : {Shape{4, 3, 5, 7}, Shape{2, 4, 40, 40}, Shape{8, 5}, Shape{3, 2, 6}})
    for (bool with_residual : {false, true}) check_fused_equals_composition(shape, with_residual, true, 11);
}

TEST_CASE("batch_norm_relu: eval mode equals the composition bit for bit on the CPU") {
  for (bool with_residual : {false, true})
    check_fused_equals_composition({3, 4, 5, 6}, with_residual, false, 12);
}

TEST_CASE("batch_norm_relu: without running statistics, batch statistics as batch_norm") {
  const Inputs in = draw({4, 3, 3, 3}, true, 13);
  NoGradGuard no_grad;
  const Tensor fused =
      batch_norm_relu(in.x, in.weight, in.bias, Tensor(), Tensor(), false, 0.1, 1e-5, in.residual);
  const Tensor composed =
      relu(add(batch_norm(in.x, in.weight, in.bias, Tensor(), Tensor(), false), in.residual));
  CHECK(same_bits(fused, composed));
}

TEST_CASE("batch_norm_relu: a NaN poisons its channel as in the composition (relu sends NaN to 0)") {
  Inputs in = draw({2, 3, 4, 4}, true, 14);
  in.x = in.x.detach().clone();
  in.x.data<float>()[1 * 16 + 5] = std::numeric_limits<float>::quiet_NaN();  // channel 1
  NoGradGuard no_grad;
  const Inputs a = copy_of(in), b = copy_of(in);
  const Tensor fused =
      batch_norm_relu(a.x, a.weight, a.bias, a.running_mean, a.running_var, true, 0.1, 1e-5, a.residual);
  const Tensor composed =
      relu(add(batch_norm(b.x, b.weight, b.bias, b.running_mean, b.running_var, true), b.residual));
  CHECK(same_bits(fused, composed));
  CHECK(same_bits(a.running_mean, b.running_mean));
  CHECK(std::isnan(a.running_mean.to_vector<float>()[1]));
  CHECK(sum(fused.select(1, 1)).item<float>() == 0.0f);
}

TEST_CASE("batch_norm_relu: one autograd node, which gives no residual gradient when none is wanted") {
  Inputs in = draw({2, 3, 4, 4}, true, 15);
  in.residual = in.residual.detach();
  const Tensor y = batch_norm_relu(in.x, in.weight, in.bias, in.running_mean, in.running_var, true, 0.1, 1e-5,
                                   in.residual);
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(y.grad_fn()->name() == "BatchNormReluBackward");
  sum(y).backward();
  CHECK(in.x.grad().defined());
  CHECK(!in.residual.grad().defined());
}

TEST_CASE("batch_norm_relu: bad residuals are errors that name the residual") {
  const Inputs in = draw({2, 3, 4, 4}, false, 16);
  const std::string shape_error = test::error_text([&] {
    batch_norm_relu(in.x, in.weight, in.bias, in.running_mean, in.running_var, true, 0.1, 1e-5,
                    zeros({2, 3, 4}));
  });
  CHECK(shape_error.find("batch_norm_relu: residual must be shaped like input") != std::string::npos);
  const std::string dtype_error = test::error_text([&] {
    batch_norm_relu(in.x, in.weight, in.bias, in.running_mean, in.running_var, true, 0.1, 1e-5,
                    zeros({2, 3, 4, 4}, TensorOptions{}.with_dtype(DType::i64)));
  });
  CHECK(dtype_error.find("batch_norm_relu: residual must be f32") != std::string::npos);
  const std::string weight_error = test::error_text(
      [&] { batch_norm_relu(in.x, zeros({4}), in.bias, in.running_mean, in.running_var, true); });
  CHECK(weight_error.find("batch_norm_relu: weight must be f32 [3]") != std::string::npos);
}

TEST_CASE("batch_norm_relu: the fast CPU kernels agree with the reference kernels") {
  Backend& fast = cpu_backend();
  Backend& reference = reference_cpu_backend();
  const Inputs in = draw({3, 4, 7, 9}, true, 17);
  const Tensor x = in.x.detach(), w = in.weight.detach(), b = in.bias.detach(), res = in.residual.detach();
  auto close = [](const Tensor& got, const Tensor& want) {
    return test::relative_norm_error(got.to_vector<float>(), want.to_vector<float>()) <= 1e-5;
  };
  struct Outputs {
    Tensor y, mean, invstd, running_mean, running_var, eval_y, dx, dw, db, dres;
  };
  auto run_on = [&](Backend& be) {
    Outputs o{empty(x.shape()),
              empty({4}),
              empty({4}),
              in.running_mean.clone(),
              in.running_var.clone(),
              empty(x.shape()),
              empty(x.shape()),
              empty({4}),
              empty({4}),
              empty(x.shape())};
    be.batch_norm_relu_fwd_train(o.y, o.mean, o.invstd, o.running_mean, o.running_var, x, w, b, res, 0.1f,
                                 1e-5f);
    be.batch_norm_relu_fwd_eval(o.eval_y, x, w, b, res, in.running_mean, in.running_var, 1e-5f);
    Generator gen(18);
    const Tensor dy = randn(x.shape(), {}, &gen);
    be.batch_norm_relu_bwd(o.dx, o.dw, o.db, o.dres, dy, o.y, x, w, o.mean, o.invstd);
    return o;
  };
  const Outputs got = run_on(fast), want = run_on(reference);
  CHECK(close(got.y, want.y));
  CHECK(close(got.running_mean, want.running_mean));
  CHECK(close(got.running_var, want.running_var));
  CHECK(close(got.eval_y, want.eval_y));
  CHECK(close(got.dx, want.dx));
  CHECK(close(got.dw, want.dw));
  CHECK(close(got.db, want.db));
  CHECK(same_bits(got.dres, want.dres));
}

// ---- models: the fused path trains as the composition ----

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  return neg(mean(sum(mul(log_softmax(logits, 1), one_hot(labels, logits.size(1))), 1)));
}

// Three SGD steps (momentum 0.9) of `model` on a fixed batch; returns the losses.
std::vector<float> train_three_steps(Module& model, const Tensor& images, const Tensor& labels) {
  model.train();
  SgdOptions options;
  options.lr = 0.05;
  options.momentum = 0.9;
  Sgd sgd(model.named_parameters(), options);
  std::vector<float> losses;
  for (int step = 0; step < 3; ++step) {
    sgd.zero_grad();
    const Tensor loss = cross_entropy(model.forward(images), labels);
    loss.backward();
    sgd.step();
    losses.push_back(loss.item<float>());
  }
  return losses;
}

// ||fused - composed|| / ||composed|| over every tensor of the state dicts, the worst one.
double worst_state_difference(const Module& fused, const Module& composed) {
  const NamedTensors a = fused.state_dict(), b = composed.state_dict();
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    const Tensor x = a[i].second.to(DType::f32), y = b[i].second.to(DType::f32);
    worst = std::max(worst, test::relative_norm_error(x.to_vector<float>(), y.to_vector<float>()));
  }
  return worst;
}

void check_training_matches(const std::string& name, int64_t side) {
  CAPTURE(name);
  auto fused = make_model(name, 3, 10, side), composed = make_model(name, 3, 10, side);
  composed->load_state_dict(fused->state_dict());
  set_fused_batchnorm_relu(*composed, false);
  Generator gen(19);
  const Tensor images = randn({4, 3, side, side}, {}, &gen);
  const Tensor labels = from_vector(std::vector<int64_t>{1, 7, 3, 3}, {4});
  const std::vector<float> fused_losses = train_three_steps(*fused, images, labels);
  const std::vector<float> composed_losses = train_three_steps(*composed, images, labels);
  for (size_t i = 0; i < fused_losses.size(); ++i)
    CHECK(std::fabs(fused_losses[i] - composed_losses[i]) <= 1e-6 * std::fabs(composed_losses[i]));
  CHECK(fused_losses.back() != fused_losses.front());  // the steps did train
  const double worst = worst_state_difference(*fused, *composed);
  MESSAGE(name, ": worst relative difference over the state dict after 3 steps: ", worst);
  CHECK(worst <= 1e-6);
}

TEST_CASE("fused BatchNorm + ReLU: ResNet-20 and ResNet-18 train as with the composition") {
  check_training_matches("resnet20", 16);
  check_training_matches("resnet18", 8);
}

TEST_CASE("fused BatchNorm + ReLU: the switch brings back the composition, the state dict is unchanged") {
  auto fused = make_model("resnet20", 3, 10, 16), composed = make_model("resnet20", 3, 10, 16);
  set_fused_batchnorm_relu(*composed, false);
  const NamedTensors a = fused->state_dict(), b = composed->state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].first == b[i].first);
  // A block's output comes from its last ReLU; that node tells which path ran.
  Generator gen(20);
  auto block = std::make_shared<CifarBasicBlock>(16, 16, 1, gen);
  block->train();
  const Tensor x = randn({2, 16, 8, 8}, {}, &gen).set_requires_grad(true);
  CHECK(block->forward(x).grad_fn()->name() == "BatchNormReluBackward");
  set_fused_batchnorm_relu(*block, false);
  CHECK(block->forward(x).grad_fn()->name() == "ReluBackward");
}

TEST_CASE("fused BatchNorm + ReLU: KINDLING_FUSE_BN_RELU sets the default of the layers made after it") {
  CHECK(BatchNorm2d(2).fuse_relu());
  ::setenv("KINDLING_FUSE_BN_RELU", "0", 1);
  CHECK(!BatchNorm2d(2).fuse_relu());
  ::setenv("KINDLING_FUSE_BN_RELU", "1", 1);
  CHECK(BatchNorm2d(2).fuse_relu());
  ::setenv("KINDLING_FUSE_BN_RELU", "off", 1);
  const std::string error = test::error_text([] { BatchNorm2d bn(2); });
  ::unsetenv("KINDLING_FUSE_BN_RELU");
  CHECK(error == "KINDLING_FUSE_BN_RELU must be 0 or 1, got 'off'");
}

TEST_CASE("fused BatchNorm + ReLU: a Sequential runs BatchNorm2d then ReLU fused, eval included") {
  Generator gen(21);
  auto make = [](uint64_t seed) {
    Generator weights(seed);
    auto seq = std::make_shared<Sequential>();
    Conv2dOptions options;
    options.padding = 1;
    seq->push_back(std::make_shared<Conv2d>(3, 4, 3, options, weights));
    seq->push_back(std::make_shared<BatchNorm2d>(4));
    seq->push_back(std::make_shared<ReLU>());
    return seq;
  };
  auto fused = make(22), composed = make(22);
  set_fused_batchnorm_relu(*composed, false);
  const Tensor x = randn({2, 3, 6, 6}, {}, &gen);
  for (bool training : {true, false}) {
    fused->train(training);
    composed->train(training);
    const Tensor a = fused->forward(x), b = composed->forward(x);
    const std::string node = training ? "BatchNormReluBackward" : "BatchNormReluEvalBackward";
    CHECK(a.grad_fn()->name() == node);
    CHECK(same_bits(a, b));
  }
  CHECK(worst_state_difference(*fused, *composed) == 0.0);
}

TEST_CASE("fused BatchNorm + ReLU: sync BN in training keeps the composition") {
  BatchNorm2d bn(3);
  bn.set_sum_over_ranks([](const Tensor&) {});
  Generator gen(23);
  const Tensor x = randn({2, 3, 4, 4}, {}, &gen).set_requires_grad(true);
  const Tensor residual = randn({2, 3, 4, 4}, {}, &gen);
  const Tensor y = bn.forward_relu(x, residual);
  CHECK(y.grad_fn()->name() == "ReluBackward");
  CHECK(bn.num_batches_tracked() == 1);
  BatchNorm2d plain(3);
  const Tensor z = plain.forward_relu(x, residual);
  CHECK(z.grad_fn()->name() == "BatchNormReluBackward");
  CHECK(plain.num_batches_tracked() == 1);
  CHECK(test::relative_norm_error(y.to_vector<float>(), z.to_vector<float>()) <= 1e-5);
}

TEST_CASE("batch_norm_relu: CUDA kernels match the CPU (skipped without a GPU)") {
  if (!cuda_available()) {
    MESSAGE("skipped: no CUDA device (built without CUDA or no GPU visible)");
    return;
  }
  for (bool training : {true, false}) {
    const Inputs in = draw({4, 8, 9, 7}, true, 24);
    Generator gen(25);
    const Tensor r = randn(in.x.shape(), {}, &gen);
    const Run cpu = run(in, training, true, r);
    Inputs on_gpu = copy_of(in);
    for (Tensor* t : {&on_gpu.x, &on_gpu.weight, &on_gpu.bias, &on_gpu.residual})
      *t = t->detach().to(Device::cuda()).set_requires_grad(true);
    on_gpu.running_mean = on_gpu.running_mean.to(Device::cuda());
    on_gpu.running_var = on_gpu.running_var.to(Device::cuda());
    const Tensor y = batch_norm_relu(on_gpu.x, on_gpu.weight, on_gpu.bias, on_gpu.running_mean,
                                     on_gpu.running_var, training, 0.1, 1e-5, on_gpu.residual);
    sum(mul(y, r.to(Device::cuda()))).backward();
    auto close = [](const Tensor& gpu, const Tensor& cpu_value) {
      return test::relative_norm_error(gpu.cpu().to_vector<float>(), cpu_value.to_vector<float>()) <= 1e-5;
    };
    CHECK(close(y, cpu.y));
    CHECK(close(on_gpu.running_mean, cpu.in.running_mean));
    CHECK(close(on_gpu.running_var, cpu.in.running_var));
    CHECK(close(on_gpu.x.grad(), cpu.in.x.grad()));
    CHECK(close(on_gpu.weight.grad(), cpu.in.weight.grad()));
    CHECK(close(on_gpu.bias.grad(), cpu.in.bias.grad()));
    CHECK(close(on_gpu.residual.grad(), cpu.in.residual.grad()));
  }
}

}  // namespace
