// Standalone timing of the CPU convolution kernels on the ResNet-20 shapes (batch 128), printed
// beside bench/conv_bench_torch.py's figures for PyTorch. Built as build/bench/conv_bench.
// Usage: conv_bench [batch] [reps] [resnet20|resnet18]
#include "core/backend.h"
#include "core/parallel.h"
#include "ops/conv.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

using namespace kindling;

namespace {

// The fastest of `reps` runs: on a shared machine the minimum is the figure least disturbed by
// other processes.
// With BENCH_CPU_TIME=1 the clock is the process's CPU time (all threads), which a busy shared
// machine disturbs far less than wall time; divide by the thread count for a wall-time estimate.
double now_ms() {
  static const bool cpu_time = std::getenv("BENCH_CPU_TIME") != nullptr;
  timespec ts;
  clock_gettime(cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

// Writes 256 MB before each timed run when `cold`, so that the operands come from memory (or
// what of them the last-level cache keeps), as in a training step where other layers ran
// between a tensor's writing and its reading.
double best_ms(const std::function<void()>& fn, int reps, bool cold = false) {
  static std::vector<char> other(size_t(256) << 20);
  fn();
  fn();
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    if (cold)
      for (size_t b = 0; b < other.size(); b += 64) other[b] = char(other[b] + 1);
    const double t0 = now_ms();
    fn();
    times.push_back(now_ms() - t0);
  }
  return *std::min_element(times.begin(), times.end());
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t N = argc > 1 ? std::atoll(argv[1]) : 128;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 10;
  const std::string model = argc > 3 ? argv[3] : "resnet20";
  struct Shape4 {
    int64_t C, K, H, stride, R;
  };
  const std::vector<Shape4> shapes =
      model == "resnet18"
          ? std::vector<Shape4>{{64, 64, 32, 1, 3},   {64, 128, 32, 2, 3}, {128, 128, 16, 1, 3},
                                {128, 256, 16, 2, 3}, {256, 256, 8, 1, 3}, {256, 512, 8, 2, 3},
                                {512, 512, 4, 1, 3},  {64, 128, 32, 2, 1}, {128, 256, 16, 2, 1},
                                {256, 512, 8, 2, 1}}
          : std::vector<Shape4>{{3, 16, 32, 1, 3},  {16, 16, 32, 1, 3}, {16, 32, 32, 2, 3},
                                {32, 32, 16, 1, 3}, {32, 64, 16, 2, 3}, {64, 64, 8, 1, 3}};
  Backend& be = cpu_backend();
  std::printf("threads %d, batch %ld\n", num_threads(), long(N));
  double total_ms[3] = {0, 0, 0};
  for (const Shape4& s : shapes) {
    Tensor x = randn({N, s.C, s.H, s.H}), w = randn({s.K, s.C, s.R, s.R});
    const Conv2dParams p = conv2d_params(x, w, {}, s.stride, s.R / 2, 1, 1);
    Tensor y = empty({N, s.K, p.P, p.Q}), dy = randn({N, s.K, p.P, p.Q});
    Tensor dx = empty(x.shape()), dw = empty(w.shape());
    const double gflop = conv2d_flops(p) / 1e9;
    const double fwd = best_ms([&] { be.conv2d_fwd(p, y, x, w, {}); }, reps);
    const double bwd_data = best_ms([&] { be.conv2d_bwd_data(p, dx, dy, w); }, reps);
    const double bwd_weight = best_ms([&] { be.conv2d_bwd_weight(p, dw, {}, x, dy); }, reps);
    std::printf(
        "C=%-3ld K=%-3ld H=%-3ld s=%ld: fwd %7.2f ms %6.1f GF/s | bwd_data %7.2f ms %6.1f GF/s | "
        "bwd_weight %7.2f ms %6.1f GF/s\n",
        long(s.C), long(s.K), long(s.H), long(s.stride), fwd, gflop / fwd * 1e3, bwd_data,
        gflop / bwd_data * 1e3, bwd_weight, gflop / bwd_weight * 1e3);
    total_ms[0] += fwd, total_ms[1] += bwd_data, total_ms[2] += bwd_weight;
  }
  std::printf("sum over the shapes: fwd %.2f ms, bwd_data %.2f ms, bwd_weight %.2f ms\n", total_ms[0],
              total_ms[1], total_ms[2]);
  // Batch norm at the three ResNet-20 stage shapes: memory-bound, so GB/s of x (and dy) read; the
  // fused forms also cold (best_ms).
  for (const int64_t C : {16, 32, 64}) {
    const int64_t H = 32 * 16 / C;
    Tensor x = randn({N, C, H, H}), y = empty(x.shape()), dy = randn(x.shape()), dx = empty(x.shape());
    Tensor weight = ones({C}), bias = zeros({C}), mean = zeros({C}), var = ones({C});
    Tensor save_mean = empty({C}), save_invstd = empty({C}), dweight = empty({C}), dbias = empty({C});
    const double gb = double(x.numel()) * 4 / 1e9;
    const double fwd = best_ms(
        [&] { be.batch_norm_fwd_train(y, save_mean, save_invstd, mean, var, x, weight, bias, 0.1f, 1e-5f); },
        reps);
    const double bwd =
        best_ms([&] { be.batch_norm_bwd(dx, dweight, dbias, dy, x, weight, save_mean, save_invstd); }, reps);
    // The residual block's form: + residual, ReLU, and the ReLU's mask in the backward.
    Tensor residual = randn(x.shape()), dresidual = empty(x.shape());
    auto fused_forward = [&] {
      be.batch_norm_relu_fwd_train(y, save_mean, save_invstd, mean, var, x, weight, bias, residual, 0.1f,
                                   1e-5f);
    };
    const double fused_fwd = best_ms(fused_forward, reps);
    const double fused_fwd_cold = best_ms(fused_forward, reps, true);
    auto fused_backward = [&] {
      be.batch_norm_relu_bwd(dx, dweight, dbias, dresidual, dy, y, x, weight, save_mean, save_invstd);
    };
    const double fused_bwd = best_ms(fused_backward, reps);
    const double fused_bwd_cold = best_ms(fused_backward, reps, true);
    std::printf(
        "batch_norm [%ld,%ld,%ld,%ld]: fwd_train %.2f ms (%.1f GB/s of x) | bwd %.2f ms | with residual and "
        "ReLU: fwd_train %.2f ms, cold %.2f | bwd %.2f ms, cold %.2f\n",
        long(N), long(C), long(H), long(H), fwd, gb / fwd * 1e3, bwd, fused_fwd, fused_fwd_cold, fused_bwd,
        fused_bwd_cold);
  }
}
