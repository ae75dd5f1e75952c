// The fused optimizer kernels on the CPU (Backend::sgd_step and adamw_step) against the formulas in
// core/backend.h: in double over several steps, and operation by operation in float, the rounding
// the CUDA kernels share.
#include "core/backend.h"
#include "core/rng.h"
#include "tests/test_op_util.h"

#include <doctest/doctest.h>

#include <cmath>
#include <vector>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("sgd_step follows PyTorch's SGD over several steps") {
  struct Variant {
    float momentum, dampening, weight_decay;
    bool nesterov;
  };
  const Variant variants[] = {{0, 0, 0, false},
                              {0, 0, 0.1f, false},
                              {0.9f, 0, 0, false},
                              {0.9f, 0.3f, 0.05f, false},
                              {0.8f, 0, 0.01f, true}};
  for (const Variant& v : variants) {
    Generator gen(8);
    const int64_t n = 40000;  // above the parallel grain
    Tensor param = randn({n}, {}, &gen), buffer = zeros({n});
    const std::vector<float> p0 = values_of(param);
    std::vector<double> p(p0.begin(), p0.end());
    std::vector<double> buf(static_cast<size_t>(n), 0.0);
    const float lr = 0.05f;
    for (int step = 0; step < 3; ++step) {
      Tensor grad = randn({n}, {}, &gen);
      const std::vector<float> g = values_of(grad);
      SgdArgs args{lr, v.momentum, v.dampening, v.weight_decay, v.nesterov, step == 0};
      backend(Device::cpu()).sgd_step(param, grad, v.momentum != 0 ? buffer : Tensor(), args);
      for (size_t i = 0; i < p.size(); ++i) {
        double d = g[i] + double(v.weight_decay) * p[i];
        if (v.momentum != 0) {
          buf[i] = step == 0 ? d : v.momentum * buf[i] + (1.0 - v.dampening) * d;
          d = v.nesterov ? d + v.momentum * buf[i] : buf[i];
        }
        p[i] -= lr * d;
      }
    }
    const std::vector<float> got = values_of(param);
    double worst = 0;
    for (size_t i = 0; i < p.size(); ++i) worst = std::max(worst, std::fabs(got[i] - p[i]));
    INFO("momentum ", v.momentum, " dampening ", v.dampening, " wd ", v.weight_decay, " nesterov ",
         v.nesterov);
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("adamw_step follows the decoupled-decay formula with bias correction") {
  Generator gen(10);
  const int64_t n = 40000;
  Tensor param = randn({n}, {}, &gen), m = zeros({n}), v = zeros({n});
  const std::vector<float> p0 = values_of(param);
  std::vector<double> p(p0.begin(), p0.end()), md(size_t(n), 0.0), vd(size_t(n), 0.0);
  const double lr = 1e-2, b1 = 0.9, b2 = 0.99, eps = 1e-8, wd = 0.1;
  for (int64_t t = 1; t <= 4; ++t) {
    Tensor grad = randn({n}, {}, &gen, 0.0, 0.1);
    const std::vector<float> g = values_of(grad);
    AdamWArgs args{float(lr), float(b1), float(b2), float(eps), float(wd), t};
    backend(Device::cpu()).adamw_step(param, grad, m, v, args);
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= lr * wd * p[i];
      md[i] = b1 * md[i] + (1 - b1) * g[i];
      vd[i] = b2 * vd[i] + (1 - b2) * double(g[i]) * g[i];
      const double m_hat = md[i] / (1 - std::pow(b1, double(t))),
                   v_hat = vd[i] / (1 - std::pow(b2, double(t)));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
  const std::vector<float> got = values_of(param), got_m = values_of(m), got_v = values_of(v);
  double worst = 0, worst_m = 0, worst_v = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    worst = std::max(worst, std::fabs(got[i] - p[i]));
    worst_m = std::max(worst_m, std::fabs(got_m[i] - md[i]));
    worst_v = std::max(worst_v, std::fabs(got_v[i] - vd[i]));
  }
  CHECK(worst < 1e-5);
  CHECK(worst_m < 1e-7);
  CHECK(worst_v < 1e-8);
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
