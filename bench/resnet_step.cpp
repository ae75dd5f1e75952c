// Standalone timing of one CPU training step (forward, backward, SGD) of a registry model, for
// profiling the kernels under perf without the CLI (bench/profile_step.sh); `kindling bench` is the
// user-facing tool. Built as build/bench/resnet_step.
// Usage: resnet_step [model] [batch] [steps]
#include "core/parallel.h"
#include "core/rng.h"
#include "losses/loss.h"
#include "nn/models.h"
#include "nn/optim.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

using namespace kindling;

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "resnet20";
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 128;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 10;
  manual_seed(0);
  auto model = make_model(name, 3, 10, 32);
  SgdOptions options;
  options.lr = 0.1, options.momentum = 0.9, options.weight_decay = 5e-4;
  Sgd optimizer(model->named_parameters(), options);
  Loss loss("ce");
  const Tensor x = randn({batch, 3, 32, 32});
  std::vector<int64_t> labels(static_cast<size_t>(batch));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = int64_t(i % 10);
  const Tensor y = from_vector(labels, {batch}, TensorOptions{}.with_dtype(DType::i64));
  auto step = [&] {
    Tensor l = loss(model->forward(x), y);
    optimizer.zero_grad();
    l.backward();
    optimizer.step();
  };
  for (int i = 0; i < 3; ++i) step();
  // Wall time, the process's CPU time, and an estimate of the wall time on dedicated cores: the
  // main thread's CPU time plus what it would wait on slower chunks of each parallel_for (see
  // core/parallel.h). On a shared machine the latter two are the figures other processes disturb
  // least; the estimate still counts load imbalance and serial sections, which CPU time hides.
  std::vector<double> ms, cpu_ms, dedicated_ms;
  auto thread_cpu_ms = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
  };
  for (int i = 0; i < steps; ++i) {
    set_parallel_wait_profiling(true);
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    const double main0 = thread_cpu_ms();
    step();
    dedicated_ms.push_back(thread_cpu_ms() - main0 + double(parallel_wait_ns()) * 1e-6);
    cpu_ms.push_back(double(std::clock() - c0) * 1e3 / CLOCKS_PER_SEC);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  set_parallel_wait_profiling(false);
  for (auto* v : {&ms, &cpu_ms, &dedicated_ms}) std::sort(v->begin(), v->end());
  auto rate = [&](double step_ms) { return 1e3 * double(batch) / step_ms; };
  std::printf(
      "%s batch %ld, %d threads: wall best %.1f ms (%.0f img/s), median %.1f ms (%.0f img/s); "
      "CPU time best %.1f ms, median %.1f ms per step; dedicated-core estimate best %.1f ms (%.0f img/s), "
      "median %.1f ms (%.0f img/s)\n",
      name.c_str(), long(batch), num_threads(), ms.front(), rate(ms.front()), ms[ms.size() / 2],
      rate(ms[ms.size() / 2]), cpu_ms.front(), cpu_ms[cpu_ms.size() / 2], dedicated_ms.front(),
      rate(dedicated_ms.front()), dedicated_ms[dedicated_ms.size() / 2],
      rate(dedicated_ms[dedicated_ms.size() / 2]));
}
