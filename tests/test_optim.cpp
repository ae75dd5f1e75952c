// nn/ optimizers against hand-computed updates: SGD with momentum, dampening, Nesterov and weight
// decay, AdamW's decoupled decay, skipped parameters, state that restores exactly, and gradient
// clipping. The fused kernels under them are tests/test_optim_kernels.cpp.
#include "core/autograd.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/test_nn_util.h"
#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace kindling;
using namespace kindling::test;

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
  for (const Config& cfg : {Config{0, 0, 0, false}, Config{0.9, 0, 5e-4, false},
                            Config{0.9, 0.1, 1e-2, false}, Config{0.9, 0, 1e-2, true}}) {
    INFO("momentum ", cfg.momentum, " dampening ", cfg.dampening, " wd ", cfg.weight_decay, " nesterov ",
         cfg.nesterov);
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
  CHECK(error_text([&] {
          Sgd(toy.layer.named_parameters(), {0.1, 0.0, 0.0, 0.0, true});
        }).find("Nesterov momentum needs momentum > 0") != std::string::npos);
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
  CHECK(toy.weight()[1] ==
        doctest::Approx(-1.0 * std::pow(1 - 0.001, 3)).epsilon(1e-6));  // zero grad: decay only
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
  for (const auto& [name, t] : uninterrupted.layer.state_dict())
    saved_params.emplace_back(name, t.detach().clone());
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
  CHECK(a.grad().to_vector<float>() == std::vector<float>{3, 4});  // below the limit: unchanged
  CHECK(clip_grad_norm({a, b, c}, 6.5) == doctest::Approx(13.0));
  const double scale = 6.5 / (13.0 + 1e-6);
  CHECK(a.grad().to_vector<float>()[1] == doctest::Approx(4 * scale));
  CHECK(b.grad().to_vector<float>()[0] == doctest::Approx(12 * scale));
  CHECK(clip_grad_norm({a, b, c}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
}
