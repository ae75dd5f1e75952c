// The fused losses: docs/losses.md's reference table, finite differences against the
// double-precision row maths, the float kernel against that reference, extreme logits, NGL's
// interior minimum, the mix schedule, reductions and input checks.
#include "test_losses_common.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "core/error.h"

#include <doctest/doctest.h>

#include <cmath>

using namespace kindling;
using namespace kindling::test;

namespace {

struct TableRow {
  const char* spec;
  double value;
  double grad[4];
};
// docs/losses.md, "Reference values for tests": z = [2, -1, 0.5, 0], y = 2, N = 1.
const TableRow kTable[] = {
    {"ce", 1.842350, {0.710100, 0.035354, -0.841555, 0.096102}},
    {"label_smoothing:eps=0.1", 1.854850, {0.685100, 0.010354, -0.766555, 0.071102}},
    {"lace", 1.550439, {0.804874, 0.040072, -0.953874, 0.108928}},
    {"expectation", 0.841555, {0.112512, 0.005602, -0.133340, 0.015227}},
    {"ce_expectation_mix:F=0.1", 2.894294, {0.850739, 0.042356, -1.008230, 0.115135}},
    {"min_ent:w1=0.8,b1=e,w2=0.3,b2=10", 1.588309, {0.518497, 0.039633, -0.653342, 0.095213}},
    {"mix_ent:w1=0.7,b1=e,w2=0.9,b2=e,d=1e-6", 11.753509, {1.896034, 0.094398, -2.247033, 0.256600}},
    {"squentropy", 3.509016, {2.043433, -0.631313, -0.841555, 0.096102}},
    {"square:k=15,M=30", 3264.687500, {1.000000, -0.500000, -221.250000, 0.000000}},
    {"ngl", 8.020225, {0.402513, -0.023895, -0.327662, -0.050956}},
    {"focal:gamma=2,alpha=1", 1.304780, {0.851788, 0.042408, -1.009473, 0.115277}},
    {"poly1:eps=2", 3.525460, {0.935123, 0.046557, -1.108235, 0.126555}},
};
const std::vector<double> kTableLogits = {2, -1, 0.5, 0};
const std::vector<int64_t> kTableLabel = {2};

// |a - b| <= tol * max(1, |b|): absolute near zero, relative for large values (square's 3264).
void check_close(double actual, double expected, double tol, const std::string& what) {
  INFO(what << ": actual " << actual << ", expected " << expected);
  CHECK(std::abs(actual - expected) <= tol * std::max(1.0, std::abs(expected)));
}

}  // namespace

TEST_CASE("the vectorizable maths the row code uses: exp_poly, log_poly, sin_unit, cos_unit") {
  double worst = 0;
  for (double x = -87.0; x <= 3.0; x += 0.00371) {
    const double exact = std::exp(double(float(x)));
    worst = std::max(worst, std::abs(double(exp_poly(float(x))) - exact) / exact);
  }
  CHECK(worst < 3e-7);
  CHECK(exp_poly(0.0f) == 1.0f);
  CHECK(exp_poly(-87.5f) == 0.0f);
  CHECK(exp_poly(-1e4f) == 0.0f);
  CHECK(std::isnan(exp_poly(NAN)));
  // log_poly serves the short rows' sums S in [1, C <= 32]: within one float rounding of ln.
  double worst_log = 0;
  for (float x = 1.0f; x <= 33.0f; x = std::nextafter(x + x * 1e-4f, 34.0f)) {
    const double exact = std::log(double(x));
    worst_log = std::max(worst_log, std::abs(double(log_poly(x)) - exact) / std::max(exact, 1e-3));
  }
  CHECK(worst_log < 1.2e-7);
  CHECK(log_poly(1.0f) == 0.0f);
  for (double x = -1.0; x <= 1.0; x += 0.001) {
    CHECK(std::abs(sin_unit(x) - std::sin(x)) < 1e-15);
    CHECK(std::abs(cos_unit(x) - std::cos(x)) < 1e-15);
    CHECK(std::abs(sin_unit(float(x)) - std::sin(float(x))) < 3e-7);
  }
}

TEST_CASE("reference table: row maths in double, every loss, value and gradient to 1e-5") {
  for (const TableRow& row : kTable) {
    const Loss loss(row.spec);
    const Reference ref = reference(loss.desc(4), kTableLogits, kTableLabel, 4);
    CHECK(ref.finite_inputs);
    check_close(ref.value, row.value, 1e-5, std::string(row.spec) + " value");
    for (int j = 0; j < 4; ++j)
      check_close(ref.grad[size_t(j)], row.grad[j], 1e-5,
                  std::string(row.spec) + " grad " + std::to_string(j));
  }
}

TEST_CASE("reference table: the fused CPU op through autograd, every loss, to 1e-5") {
  for (const TableRow& row : kTable) {
    const FusedResult fused = run_fused(Loss(row.spec), to_float(kTableLogits), kTableLabel, 4);
    check_close(fused.value, row.value, 1e-5, std::string(row.spec) + " value");
    for (int j = 0; j < 4; ++j)
      check_close(fused.grad[size_t(j)], row.grad[j], 1e-5,
                  std::string(row.spec) + " grad " + std::to_string(j));
  }
}

TEST_CASE("finite differences: the double row maths of every loss, default and other settings") {
  Generator gen(7);
  for (const std::string& spec : all_specs()) {
    for (const int64_t C : {2, 5, 13}) {
      const int64_t N = 3;
      const Loss loss(spec);
      const LossDesc desc = loss.desc(C);
      std::vector<double> z = random_logits(gen, N, C, 3.0);
      const std::vector<int64_t> labels = random_labels(gen, N, C);
      const Reference ref = reference(desc, z, labels, C);
      constexpr double h = 1e-5;
      for (size_t i = 0; i < z.size(); ++i) {
        const double saved = z[i];
        z[i] = saved + h;
        const double up = reference(desc, z, labels, C).value;
        z[i] = saved - h;
        const double down = reference(desc, z, labels, C).value;
        z[i] = saved;
        const double numeric = (up - down) / (2 * h);
        INFO(spec << " C=" << C << " element " << i << ": analytic " << ref.grad[i] << ", numeric "
                  << numeric);
        CHECK(std::abs(ref.grad[i] - numeric) <= 1e-7 * std::max(1.0, std::abs(numeric)));
      }
    }
  }
}

TEST_CASE("the float CPU kernel matches the double reference on random batches") {
  Generator gen(11);
  for (const std::string& spec : all_specs()) {
    // C <= 32 runs the CPU kernel's blocks of short rows (one or two 16-lane column blocks in its
    // transposes), C > 32 its row-at-a-time loops.
    for (const int64_t C : {1, 3, 10, 16, 17, 32, 33, 100}) {
      if (C < 2 && spec == "squentropy") continue;
      const int64_t N = 37;  // several blocks of 16 rows and a ragged end
      const Loss loss(spec);
      const std::vector<float> z = to_float(random_logits(gen, N, C, 4.0));
      const std::vector<int64_t> labels = random_labels(gen, N, C);
      const Reference ref = reference(loss.desc(C), to_double(z), labels, C);
      const FusedResult fused = run_fused(loss, z, labels, C);
      check_close(fused.value, ref.value, 2e-6, spec + " value");
      double max_grad = 0;
      for (double g : ref.grad) max_grad = std::max(max_grad, std::abs(g));
      for (size_t i = 0; i < z.size(); ++i) {
        INFO(spec << " C=" << C << " element " << i);
        CHECK(std::abs(fused.grad[i] - ref.grad[i]) <= 1e-6 * std::max(max_grad, 1e-2));
      }
    }
  }
}

TEST_CASE("extreme logits (+-1e4): finite values and gradients for every loss") {
  const int64_t C = 6;
  // Rows: label on the huge logit, label on the tiny one, all huge, a single huge spike.
  const std::vector<float> z = {1e4f,  -1e4f, 0,     5,    -1e4f, 1e4f,  //
                                1e4f,  -1e4f, 0,     5,    -1e4f, 1e4f,  //
                                1e4f,  1e4f,  1e4f,  1e4f, 1e4f,  1e4f,  //
                                -1e4f, -1e4f, -1e4f, 1e4f, -1e4f, -1e4f};
  const std::vector<int64_t> labels = {0, 1, 2, 3};
  for (const std::string& spec : all_specs()) {
    const FusedResult fused = run_fused(Loss(spec), z, labels, C);
    INFO(spec << " value " << fused.value);
    CHECK(std::isfinite(fused.value));
    for (float g : fused.grad) CHECK(std::isfinite(g));
    // The double reference agrees, so "finite" is also "right".
    const Reference ref = reference(Loss(spec).desc(C), to_double(z), labels, C);
    check_close(fused.value, ref.value, 1e-5, spec + " value at extreme logits");
  }
}

TEST_CASE("ngl: gradient descent on one row with C = 10 ends at p_y ~ 0.391, not 1") {
  const int64_t C = 10;
  const LossDesc desc = Loss("ngl").desc(C);
  std::vector<double> z(C, 0.0);
  const std::vector<int64_t> label = {3};
  // NGL's gradients are small, hence the large step; at 20 or more it oscillates away.
  for (int step = 0; step < 5000; ++step) {
    const Reference ref = reference(desc, z, label, C);
    for (int64_t j = 0; j < C; ++j) z[size_t(j)] -= 5.0 * ref.grad[size_t(j)];
  }
  double max_z = z[0], sum = 0;
  for (double v : z) max_z = std::max(max_z, v);
  for (double v : z) sum += std::exp(v - max_z);
  const double p_y = std::exp(z[3] - max_z) / sum;
  CHECK(p_y == doctest::Approx(0.391).epsilon(0.005));
  CHECK(z[3] == max_z);  // argmax is still right
}

TEST_CASE("ngl: gradients at initialisation are ~12x (C = 10) and ~1000x (C = 100) smaller than CE's") {
  auto norm = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s);
  };
  for (const auto& [C, ratio] : {std::pair<int64_t, double>{10, 12.27}, {100, 926.3}}) {
    const std::vector<double> z(size_t(C), 0.0);  // equal logits, as at initialisation
    const double ce = norm(reference(Loss("ce").desc(C), z, {0}, C).grad);
    const double ngl = norm(reference(Loss("ngl").desc(C), z, {0}, C).grad);
    CHECK(ce / ngl == doctest::Approx(ratio).epsilon(1e-3));
  }
}

TEST_CASE("ce_expectation_mix: the schedule of the three presets over 240 epochs") {
  auto weights_at = [](Loss& loss, int64_t epoch) {
    loss.set_progress(epoch, 240);
    const LossDesc desc = loss.desc(100);
    return std::pair<double, double>{desc.params[0], desc.params[1]};
  };
  Loss constant("ce_expectation_mix:F=0");
  for (int64_t epoch = 0; epoch < 240; ++epoch)
    CHECK(weights_at(constant, epoch) == std::pair<double, double>{1.0, 1.0});

  Loss two_part("ce_expectation_mix");  // the default, F=0/0.5, h=1.9
  for (int64_t epoch = 0; epoch < 240; ++epoch) {
    INFO("epoch " << epoch);
    CHECK(weights_at(two_part, epoch) ==
          (epoch <= 227 ? std::pair<double, double>{1.0, 1.0} : std::pair<double, double>{0.0, 1.0}));
  }

  Loss six_part("ce_expectation_mix:F=0/0.1/0.2/0.3/0.4/0.5,h=1");
  const double betas[6] = {1.0, 1.25, 1.0 / 0.6, 2.5, 5.0, 1.0};
  for (int64_t epoch = 0; epoch < 240; ++epoch) {
    INFO("epoch " << epoch);
    const int64_t block = epoch / 40;
    const auto [alpha, beta] = weights_at(six_part, epoch);
    CHECK(alpha == (block == 5 ? 0.0 : 1.0));
    CHECK(beta == doctest::Approx(betas[block]).epsilon(1e-6));
  }
  // Before set_progress the first fraction applies.
  CHECK(Loss("ce_expectation_mix").desc(10).params[0] == 1.0f);
  CHECK_THROWS_WITH_AS(two_part.set_progress(3, 0),
                       doctest::Contains("set_progress needs epoch >= 0 and total_epochs >= 1"), ValueError);
}

TEST_CASE("reductions: sum and none agree with mean, and the backward scales by the upstream grad") {
  Generator gen(5);
  const int64_t N = 4, C = 7;
  const std::vector<float> z = to_float(random_logits(gen, N, C, 2.0));
  const std::vector<int64_t> labels = random_labels(gen, N, C);
  const Tensor label_tensor = from_vector<int64_t>(labels, {N}, TensorOptions{}.with_dtype(DType::i64));
  for (const std::string& spec : default_specs()) {
    const FusedResult mean = run_fused(Loss(spec), z, labels, C);
    const FusedResult sum = run_fused(Loss(spec + ":reduction=sum"), z, labels, C);
    check_close(sum.value, mean.value * N, 1e-5, spec + " sum");
    for (size_t i = 0; i < z.size(); ++i) CHECK(sum.grad[i] == doctest::Approx(mean.grad[i] * N));

    Tensor logits = from_vector<float>(z, {N, C});
    logits.set_requires_grad(true);
    const Tensor rows = Loss(spec + ":reduction=none")(logits, label_tensor);
    REQUIRE(rows.shape() == Shape{N});
    const std::vector<float> row_values = rows.to_vector<float>();
    double total = 0;
    for (float v : row_values) total += v;
    check_close(total, sum.value, 1e-5, spec + " none");
    const std::vector<float> upstream = {1.0f, -2.0f, 0.5f, 3.0f};
    rows.backward(from_vector<float>(upstream, {N}));
    const std::vector<float> grad = logits.grad().to_vector<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < C; ++j)
        CHECK(grad[size_t(n * C + j)] ==
              doctest::Approx(upstream[size_t(n)] * sum.grad[size_t(n * C + j)]).epsilon(1e-5));
  }
}

TEST_CASE("backward of the scalar loss: seed 1 hands over the saved gradient, safely under retain_graph") {
  Generator gen(6);
  const int64_t N = 3, C = 5;
  const std::vector<float> z = to_float(random_logits(gen, N, C, 2.0));
  const std::vector<int64_t> labels = random_labels(gen, N, C);
  const Tensor label_tensor = from_vector<int64_t>(labels, {N}, TensorOptions{}.with_dtype(DType::i64));
  const std::vector<float> once = run_fused(Loss("ce"), z, labels, C).grad;
  Tensor logits = from_vector<float>(z, {N, C});
  logits.set_requires_grad(true);
  const Tensor loss = Loss("ce")(logits, label_tensor);
  // Three backwards through one graph accumulate 3x; the leaf's grad must not share the buffer
  // the node keeps, or the accumulation would feed back into the next backward.
  loss.backward({}, true);
  loss.backward({}, true);
  loss.backward(from_vector<float>({1.0f}, {}), true);
  std::vector<float> grad = logits.grad().to_vector<float>();
  for (size_t i = 0; i < grad.size(); ++i) CHECK(grad[i] == doctest::Approx(3 * once[i]));
  logits.set_grad(Tensor());
  loss.backward(from_vector<float>({-2.0f}, {}));  // a seed other than 1 scales
  grad = logits.grad().to_vector<float>();
  for (size_t i = 0; i < grad.size(); ++i) CHECK(grad[i] == doctest::Approx(-2 * once[i]));
}

TEST_CASE("no gradient wanted: the forward alone gives the same value and records nothing") {
  const Tensor logits = from_vector<float>(to_float(kTableLogits), {1, 4});
  const Tensor labels = from_vector<int64_t>(kTableLabel, {1}, TensorOptions{}.with_dtype(DType::i64));
  for (const TableRow& row : kTable) {
    const Tensor out = Loss(row.spec)(logits, labels);
    CHECK(out.grad_fn() == nullptr);
    check_close(out.item<float>(), row.value, 1e-5, row.spec);
  }
  Tensor tracked = from_vector<float>(to_float(kTableLogits), {1, 4});
  tracked.set_requires_grad(true);
  NoGradGuard no_grad;
  CHECK(Loss("focal")(tracked, labels).grad_fn() == nullptr);
}

TEST_CASE("non-contiguous logits and labels give the contiguous result") {
  Generator gen(3);
  const int64_t N = 5, C = 4;
  const std::vector<float> z = to_float(random_logits(gen, N, C, 2.0));
  const std::vector<int64_t> labels = random_labels(gen, N, C);
  // logits stored transposed [C, N], labels with stride 2.
  std::vector<float> zt(z.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < C; ++j) zt[size_t(j * N + n)] = z[size_t(n * C + j)];
  std::vector<int64_t> spread(size_t(2 * N), -1);
  for (int64_t n = 0; n < N; ++n) spread[size_t(2 * n)] = labels[size_t(n)];
  const Tensor base_t = from_vector<float>(zt, {C, N});
  const Tensor logits = as_strided(base_t, {N, C}, {1, N}, 0);
  const Tensor base_l = from_vector<int64_t>(spread, {2 * N}, TensorOptions{}.with_dtype(DType::i64));
  const Tensor strided_labels = as_strided(base_l, {N}, {2}, 0);
  for (const char* spec : {"ce", "ngl", "square"}) {
    const double expected = run_fused(Loss(spec), z, labels, C).value;
    CHECK(Loss(spec)(logits, strided_labels).item<float>() == doctest::Approx(expected));
  }
}

TEST_CASE("input checks: labels, non-finite logits, shapes, dtypes, devices") {
  const Loss loss("focal");
  const auto i64 = TensorOptions{}.with_dtype(DType::i64);
  const Tensor logits = zeros({3, 4});
  CHECK_THROWS_WITH_AS(loss(logits, from_vector<int64_t>({0, 4, 1}, {3}, i64)),
                       "loss focal: labels[1] = 4 is outside [0, 4) for logits f32[3,4] on cpu", ValueError);
  CHECK_THROWS_WITH_AS(loss(logits, from_vector<int64_t>({0, 1, -2}, {3}, i64)),
                       doctest::Contains("labels[2] = -2 is outside [0, 4)"), ValueError);
  const Tensor with_nan = from_vector<float>({0, 0, 0, 0, 1, 2, NAN, 3, 1, 1, 1, 1}, {3, 4});
  CHECK_THROWS_WITH_AS(loss(with_nan, from_vector<int64_t>({0, 1, 2}, {3}, i64)),
                       "loss focal: logits row 1 holds a non-finite value (nan at column 2)", ValueError);
  const Tensor with_inf = from_vector<float>({0, 0, 0, INFINITY, 1, 2, 2, 3, 1, 1, 1, -INFINITY}, {3, 4});
  CHECK_THROWS_WITH_AS(Loss("square")(with_inf, from_vector<int64_t>({0, 1, 2}, {3}, i64)),
                       "loss square: logits row 0 holds a non-finite value (inf at column 3)", ValueError);
  CHECK_THROWS_WITH_AS(loss(logits, from_vector<int64_t>({0, 1}, {2}, i64)),
                       "loss focal: needs logits [N,C] and labels [N] with N, C >= 1; got logits "
                       "f32[3,4] on cpu and labels i64[2] on cpu",
                       ShapeError);
  CHECK_THROWS_WITH_AS(loss(zeros({12}), from_vector<int64_t>({0, 1, 2}, {3}, i64)),
                       doctest::Contains("got logits f32[12] on cpu and labels i64[3] on cpu"), ShapeError);
  CHECK_THROWS_WITH_AS(loss(logits, zeros({3})),
                       "loss focal: needs logits f32 and labels i64; got logits f32[3,4] on cpu "
                       "and labels f32[3] on cpu",
                       DTypeError);
  CHECK_THROWS_WITH_AS(Loss("squentropy")(zeros({2, 1}), from_vector<int64_t>({0, 0}, {2}, i64)),
                       doctest::Contains("needs at least 2 classes"), ShapeError);
  CHECK_THROWS_AS(loss(zeros({0, 4}), from_vector<int64_t>({}, {0}, i64)), ShapeError);
}

TEST_CASE("cuda parity: every loss, forward and backward, CPU against CUDA") {
  if (!cuda_available()) {
    MESSAGE("skipped: no CUDA GPU (kindling::cuda_available() is false)");
    return;
  }
  Generator gen(21);
  for (const std::string& spec : all_specs()) {
    for (const int64_t C : {2, 10, 100, 1000}) {
      const int64_t N = 67;
      const Loss loss(spec);
      const std::vector<float> z = to_float(random_logits(gen, N, C, 4.0));
      const std::vector<int64_t> labels = random_labels(gen, N, C);
      const FusedResult cpu = run_fused(loss, z, labels, C);
      const FusedResult gpu = run_fused(loss, z, labels, C, Device::cuda());
      check_close(gpu.value, cpu.value, 1e-5, spec + " value on CUDA");
      double max_grad = 0;
      for (float g : cpu.grad) max_grad = std::max(max_grad, double(std::abs(g)));
      for (size_t i = 0; i < z.size(); ++i) {
        INFO(spec << " C=" << C << " element " << i);
        CHECK(std::abs(gpu.grad[i] - cpu.grad[i]) <= 1e-5 * std::max(max_grad, 1e-3));
      }
    }
    // Extreme logits and the non-finite check on the device.
    const std::vector<float> extreme = {1e4f, -1e4f, 0, 5, -1e4f, 1e4f, 1e4f, 1e4f};
    const FusedResult gpu = run_fused(Loss(spec), extreme, {0, 3}, 4, Device::cuda());
    CHECK(std::isfinite(gpu.value));
    for (float g : gpu.grad) CHECK(std::isfinite(g));
  }
  const Tensor bad = from_vector<float>({0, 0, 1, NAN}, {2, 2}).to(Device::cuda());
  const Tensor labels =
      from_vector<int64_t>({0, 1}, {2}, TensorOptions{}.with_dtype(DType::i64)).to(Device::cuda());
  // On the GPU the error comes when the value is read (the first synchronisation).
  CHECK_THROWS_WITH_AS(Loss("ce")(bad, labels).item<float>(), doctest::Contains("logits row 1"), ValueError);
}
