// Fused equals composed: each loss written from primitive ops (losses/composed_loss.cpp) gives the
// fused op's value and gradient; and the benchmark that compares their speed runs.
#include "test_losses_common.h"

#include "core/backend.h"
#include "losses/composed_loss.h"
#include "losses/loss_bench.h"

#include <doctest/doctest.h>

#include <cmath>

using namespace kindling;
using namespace kindling::test;

namespace {
FusedResult run_composed(const LossDesc& desc, const std::vector<float>& z,
                         const std::vector<int64_t>& labels, int64_t C, Device device) {
  const int64_t N = int64_t(labels.size());
  Tensor logits = from_vector<float>(z, {N, C}).to(device);
  logits.set_requires_grad(true);
  const Tensor label_tensor =
      from_vector<int64_t>(labels, {N}, TensorOptions{}.with_dtype(DType::i64)).to(device);
  const Tensor out = composed_loss(desc, logits, label_tensor);
  out.backward();
  return {double(out.item<float>()), logits.grad().to_vector<float>()};
}

void check_fused_equals_composed(Device device) {
  Generator gen(17);
  for (const std::string& spec : all_specs()) {
    for (const int64_t C : {4, 50}) {
      const int64_t N = 9;
      const Loss loss(spec);
      const std::vector<float> z = to_float(random_logits(gen, N, C, 3.0));
      const std::vector<int64_t> labels = random_labels(gen, N, C);
      const FusedResult fused = run_fused(loss, z, labels, C, device);
      const FusedResult composed = run_composed(loss.desc(C), z, labels, C, device);
      INFO(spec << " C=" << C << " on " << device.str());
      CHECK(fused.value == doctest::Approx(composed.value).epsilon(1e-5));
      double max_grad = 0;
      for (float g : composed.grad) max_grad = std::max(max_grad, double(std::abs(g)));
      for (size_t i = 0; i < z.size(); ++i) {
        INFO("element " << i << ": fused " << fused.grad[i] << ", composed " << composed.grad[i]);
        CHECK(std::abs(fused.grad[i] - composed.grad[i]) <= 2e-5 * std::max(max_grad, 1e-3));
      }
    }
  }
}
}  // namespace

TEST_CASE("fused equals composed on the CPU: every loss, forward and backward") {
  check_fused_equals_composed(Device::cpu());
}

TEST_CASE("fused equals composed on CUDA") {
  if (!cuda_available()) {
    MESSAGE("skipped: no CUDA GPU (kindling::cuda_available() is false)");
    return;
  }
  check_fused_equals_composed(Device::cuda());
}

TEST_CASE("the loss benchmark times both versions of each loss at each size") {
  const std::vector<LossBenchResult> results =
      bench_losses({"ce", "ngl"}, {{8, 5}, {3, 7}}, Device::cpu(), 2);
  REQUIRE(results.size() == 4);
  CHECK(results[0].loss == "ce");
  CHECK(results[1].loss == "ngl");
  CHECK(results[3].N == 3);
  CHECK(results[3].C == 7);
  for (const LossBenchResult& r : results) {
    CHECK(r.fused_ms > 0);
    CHECK(r.composed_ms > 0);
  }
  const std::string table = format_loss_bench(results);
  CHECK(table.find("speedup") != std::string::npos);
  CHECK(table.find("ngl") != std::string::npos);
}
