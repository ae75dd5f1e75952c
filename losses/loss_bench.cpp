// Timing of fused and composed losses. Inputs are drawn once per size from a fixed seed, so every
// loss sees the same logits.
#include "losses/loss_bench.h"

#include "core/backend.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "losses/composed_loss.h"
#include "losses/loss.h"
#include "losses/registry.h"

#include <algorithm>
#include <chrono>
#include <functional>

namespace kindling {
namespace {

// Median wall time in ms of `repeats` calls of `step`, after one untimed call.
double median_ms(const std::function<void()>& step, Device device, int repeats) {
  step();
  backend(device).synchronize();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    step();
    backend(device).synchronize();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    times.push_back(std::chrono::duration<double, std::milli>(elapsed).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

std::vector<LossBenchResult> bench_losses(std::vector<std::string> specs, std::vector<LossBenchSize> sizes,
                                          Device device, int repeats) {
  if (specs.empty())
    for (const LossInfo& info : loss_registry()) specs.emplace_back(info.name);
  if (sizes.empty()) sizes = {{128, 10}, {1024, 1000}};
  repeats = std::max(repeats, 1);
  std::vector<LossBenchResult> results;
  for (const LossBenchSize& size : sizes) {
    Generator generator(1234);
    Tensor logits = randn({size.N, size.C}, TensorOptions{}.with_device(device), &generator);
    logits.set_requires_grad(true);
    std::vector<int64_t> label_values(static_cast<size_t>(size.N));
    for (int64_t& label : label_values) label = generator.randint(size.C);
    const Tensor labels = from_vector<int64_t>(label_values, {size.N},
                                               TensorOptions{}.with_dtype(DType::i64).with_device(device));
    for (const std::string& spec : specs) {
      const Loss loss(spec);
      const LossDesc desc = loss.desc(size.C);
      auto run = [&](const std::function<Tensor()>& forward) {
        logits.set_grad(Tensor());
        forward().backward();
      };
      LossBenchResult result;
      result.loss = spec;
      result.N = size.N;
      result.C = size.C;
      result.fused_ms = median_ms([&] { run([&] { return loss(logits, labels); }); }, device, repeats);
      result.composed_ms =
          median_ms([&] { run([&] { return composed_loss(desc, logits, labels); }); }, device, repeats);
      results.push_back(result);
    }
  }
  return results;
}

std::string format_loss_bench(const std::vector<LossBenchResult>& results) {
  std::string text = fmt::format("{:<20} {:>6} {:>6} {:>10} {:>12} {:>8}\n", "loss", "N", "C", "fused ms",
                                 "composed ms", "speedup");
  for (const LossBenchResult& r : results)
    text += fmt::format("{:<20} {:>6} {:>6} {:>10.4f} {:>12.4f} {:>7.1f}x\n", r.loss, r.N, r.C, r.fused_ms,
                        r.composed_ms, r.speedup());
  return text;
}

}  // namespace kindling
