// `kindling bench`: op-level timings (the convolutions of ResNet-20 and ResNet-18, GEMMs, batch
// norm, pooling, the losses) and the end-to-end training step, on every requested device, with
// PyTorch's twin (bench/pytorch_reference.py) run beside it by --compare-pytorch; --peak measures
// the CPU's arithmetic peak instead. Each result: warm-up, then the median and spread of timed
// repeats, images/s, GFLOP/s where defined (a training step: its share of the CPU's FP32 peak too),
// peak memory from the device allocator.
#include "apps/bench.h"
#include "apps/commands.h"
#include "apps/trainer.h"
#include "core/autograd.h"
#include "core/backend.h"
#include "core/parallel.h"
#include "core/precision.h"
#include "dist/gradient_reducer.h"
#include "losses/loss.h"
#include "losses/loss_bench.h"
#include "nn/flops.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "ops/cpu/conv_winograd.h"
#include "ops/device_info.h"
#include "ops/ops.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

namespace kindling::app {
namespace {

// Warm-up, then `repeats` timed calls; the device is synchronized before each clock read.
BenchResult time_it(const std::string& name, Device device, int warmup, int repeats,
                    const std::function<void()>& fn) {
  Backend& be = backend(device);
  for (int i = 0; i < warmup; ++i) fn();
  be.synchronize();
  be.allocator().reset_peak();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    be.synchronize();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  BenchResult r;
  r.name = name;
  r.device = device.str();
  r.ms_median = ms[ms.size() / 2];
  r.ms_min = ms.front();
  r.ms_max = ms.back();
  r.peak_bytes = be.allocator().stats().peak_allocated_bytes;
  return r;
}

// One SGD step of the whole model at global batch o.batch_size. Under mpirun each rank takes an equal
// share and the gradients are all-reduced as in training; the step's time is the slowest rank's,
// and images/s is global. GFLOP/s counts the convolutions and linear layers (nn/flops.h), as direct
// convolutions: with Winograd (CPU) it is an effective rate. On the CPU, peak_fraction is its share
// of `cpu_peak_gflops`, the FP32 peak of all the ranks' threads.
BenchResult train_step(const BenchOptions& o, Device device, double cpu_peak_gflops) {
  dist::Communicator& world = dist::world();
  if (o.batch_size % world.size() != 0)
    throw UsageError(
        fmt::format("--batch-size {} does not split evenly over {} ranks (it is the global "
                    "batch)",
                    o.batch_size, world.size()));
  const int64_t local_batch = o.batch_size / world.size();
  manual_seed(0);
  auto model = make_model(o.model, o.channels, o.classes, o.image_size);
  model->to(device);
  const double flop_per_image = training_flops_per_image(*model, o.channels, o.image_size).total();
  std::unique_ptr<dist::GradientReducer> reducer;
  if (world.size() > 1)
    reducer = std::make_unique<dist::GradientReducer>(dist::for_device(device), model->parameters());
  SgdOptions so;
  so.lr = 0.1;
  so.momentum = 0.9;
  so.weight_decay = 5e-4;
  Sgd optimizer(model->named_parameters(), so);
  Loss loss("ce");
  const Tensor x = randn({local_batch, o.channels, o.image_size, o.image_size}).to(device);
  std::vector<int64_t> labels(static_cast<size_t>(local_batch));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = int64_t(i) % o.classes;
  const Tensor y = from_vector(labels, {local_batch}).to(device);
  const std::string ranks = world.size() > 1 ? fmt::format("/{}ranks", world.size()) : "";
  const std::string name = fmt::format("train_step/{}/b{}{}", o.model, o.batch_size, ranks);
  BenchResult r = time_it(name, device, o.warmup, o.repeats, [&] {
    Tensor l = loss(model->forward(x), y);
    optimizer.zero_grad();
    if (reducer) {
      reducer->prepare();
      mul(l, 1.0 / world.size()).backward();
      reducer->finish();
    } else {
      l.backward();
    }
    optimizer.step();
  });
  Tensor slowest = from_vector(std::vector<float>{float(r.ms_median)}, {1});
  world.all_reduce_max(slowest);
  r.ms_median = slowest.item<float>();
  r.images_per_s = double(o.batch_size) * 1e3 / r.ms_median;
  r.gflop_per_image = flop_per_image * 1e-9;
  r.gflop_per_s = r.gflop_per_image * r.images_per_s;
  if (device.is_cpu()) {
    r.peak_gflop_per_s = cpu_peak_gflops;
    r.precision = precision_name(gemm_precision());
    r.winograd = cpu::winograd_enabled();
  }
  return r;
}

struct ConvShape {
  const char* model;
  int64_t N, C, H, K, R, stride;
};

std::vector<BenchResult> op_benchmarks(const BenchOptions& o, Device device) {
  std::vector<BenchResult> results;
  Backend& be = backend(device);
  const TensorOptions on = TensorOptions{}.with_device(device);
  const int64_t n = o.batch_size;
  const ConvShape shapes[] = {{"resnet20", n, 16, 32, 16, 3, 1},   {"resnet20", n, 16, 32, 32, 3, 2},
                              {"resnet20", n, 32, 16, 32, 3, 1},   {"resnet20", n, 32, 16, 64, 3, 2},
                              {"resnet20", n, 64, 8, 64, 3, 1},    {"resnet18", n, 64, 32, 64, 3, 1},
                              {"resnet18", n, 128, 16, 128, 3, 1}, {"resnet18", n, 256, 8, 256, 3, 1},
                              {"resnet18", n, 512, 4, 512, 3, 1},  {"resnet18", n, 64, 32, 128, 1, 2}};
  for (const ConvShape& s : shapes) {
    Conv2dParams p{s.N, s.C, s.H, s.H, s.K, s.R, s.R, 0, 0};
    p.stride_h = p.stride_w = s.stride;
    p.pad_h = p.pad_w = s.R / 2;
    p.P = p.Q = (s.H + 2 * p.pad_h - s.R) / s.stride + 1;
    const Tensor x = randn({s.N, s.C, s.H, s.H}, on), w = randn({s.K, s.C, s.R, s.R}, on);
    const Tensor y = empty({s.N, s.K, p.P, p.Q}, on), dx = empty_like(x), dw = empty_like(w);
    const double flops = 2.0 * double(s.N * s.K * p.P * p.Q * s.C * s.R * s.R);
    const std::string tag =
        fmt::format("{}/c{}_k{}_{}x{}_r{}_s{}", s.model, s.C, s.K, s.H, s.H, s.R, s.stride);
    auto add = [&](const char* what, const std::function<void()>& fn) {
      BenchResult r = time_it(fmt::format("conv2d_{}/{}", what, tag), device, 2, o.repeats, fn);
      r.gflop_per_s = flops / (r.ms_median * 1e6);
      results.push_back(r);
    };
    add("fwd", [&] { be.conv2d_fwd(p, y, x, w, Tensor()); });
    add("bwd_data", [&] { be.conv2d_bwd_data(p, dx, y, w); });
    add("bwd_weight", [&] { be.conv2d_bwd_weight(p, dw, Tensor(), x, y); });
  }
  for (int64_t size : {512, 1024, 2048}) {
    const Tensor a = randn({size, size}, on), b = randn({size, size}, on), c = empty({size, size}, on);
    BenchResult r = time_it(fmt::format("gemm/{}x{}x{}", size, size, size), device, 2, o.repeats, [&] {
      be.gemm(false, false, size, size, size, 1.0f, a.data<float>(), size, 0, b.data<float>(), size, 0, 0.0f,
              c.data<float>(), size, 0, 1);
    });
    r.gflop_per_s = 2.0 * double(size * size * size) / (r.ms_median * 1e6);
    results.push_back(r);
  }
  {
    const Tensor x = randn({n, 64, 32, 32}, on), y = empty_like(x), dx = empty_like(x);
    const Tensor weight = ones({64}, on), bias = zeros({64}, on), mean = zeros({64}, on),
                 var = ones({64}, on);
    const Tensor save_mean = empty({64}, on), save_invstd = empty({64}, on), dw = empty({64}, on),
                 db = empty({64}, on);
    results.push_back(time_it("batch_norm_fwd_train/64x32x32", device, 2, o.repeats, [&] {
      be.batch_norm_fwd_train(y, save_mean, save_invstd, mean, var, x, weight, bias, 0.1f, 1e-5f);
    }));
    results.push_back(time_it("batch_norm_bwd/64x32x32", device, 2, o.repeats,
                              [&] { be.batch_norm_bwd(dx, dw, db, y, x, weight, save_mean, save_invstd); }));
    Pool2dParams pp{n, 64, 32, 32, 16, 16, 2, 2, 2, 2};
    const Tensor py = empty({n, 64, 16, 16}, on),
                 idx = empty({n, 64, 16, 16}, TensorOptions{on}.with_dtype(DType::i64));
    results.push_back(time_it("max_pool2d_fwd/64x32x32_k2", device, 2, o.repeats,
                              [&] { be.max_pool2d_fwd(pp, py, idx, x); }));
    results.push_back(time_it("max_pool2d_bwd/64x32x32_k2", device, 2, o.repeats,
                              [&] { be.max_pool2d_bwd(pp, dx, py, idx); }));
  }
  for (const LossBenchResult& l : bench_losses({}, {}, device, o.repeats)) {
    BenchResult r;
    r.name = fmt::format("loss/{}/N{}_C{} (composed {:.3f} ms, fused {:.1f}x faster)", l.loss, l.N, l.C,
                         l.composed_ms, l.speedup());
    r.device = device.str();
    r.ms_median = r.ms_min = r.ms_max = l.fused_ms;
    results.push_back(r);
  }
  return results;
}

void print_table(const std::vector<BenchResult>& results) {
  fmt::print("{:<62} {:>6} {:>10} {:>10} {:>10} {:>9} {:>9} {:>7} {:>10}\n", "benchmark", "device",
             "median ms", "min ms", "max ms", "img/s", "GFLOP/s", "% peak", "peak MiB");
  auto optional = [](double value, const char* format) {
    return value >= 0 ? fmt::format(fmt::runtime(format), value) : std::string("-");
  };
  for (const BenchResult& r : results)
    fmt::print("{:<62} {:>6} {:>10.3f} {:>10.3f} {:>10.3f} {:>9} {:>9} {:>7} {:>10.1f}\n", r.name, r.device,
               r.ms_median, r.ms_min, r.ms_max, optional(r.images_per_s, "{:.0f}"),
               optional(r.gflop_per_s, "{:.1f}"), optional(r.peak_fraction() * 100, "{:.1f}"),
               double(r.peak_bytes) / (1 << 20));
  if (std::any_of(results.begin(), results.end(), [](const BenchResult& r) { return r.winograd; }))
    fmt::print(
        "CPU training steps: GFLOP/s and % peak are effective, the direct convolution's FLOPs over the "
        "time; the 3x3 stride-1 layers run Winograd {} (KINDLING_WINOGRAD=0: direct)\n",
        gemm_precision() == Precision::bf16
            ? "F(2x2,3x3), 2.25x fewer multiplications, on bf16 tile GEMMs"
            : "F(2x2,3x3) and F(4x4,3x3), 2.25x and 4x fewer multiplications");
}

// The CPU's FP32 peak on every rank's threads, for the training steps' peak_fraction: --peak-gflops,
// or measured here, on all ranks at once, and summed over them.
double cpu_peak_gflops(const BenchOptions& o, std::vector<PeakResult>& measured) {
  if (o.peak_gflops > 0) return o.peak_gflops;
  measured.push_back(measure_fp32_peak(o.peak_seconds, 3));
  Tensor total = from_vector(std::vector<float>{float(measured.back().gflop_per_s)}, {1});
  dist::world().all_reduce(total);
  return total.item<float>();
}

}  // namespace

nlohmann::json BenchResult::to_json() const {
  nlohmann::json j = {{"name", name},     {"device", device}, {"ms_median", ms_median},
                      {"ms_min", ms_min}, {"ms_max", ms_max}, {"peak_bytes", peak_bytes}};
  j["images_per_s"] = images_per_s >= 0 ? nlohmann::json(images_per_s) : nlohmann::json(nullptr);
  if (gflop_per_s >= 0) j["gflop_per_s"] = j["gflops"] = gflop_per_s;  // "gflops": the older name
  if (gflop_per_image >= 0) j["gflop_per_image"] = gflop_per_image;
  if (peak_gflop_per_s > 0) {
    j["peak_gflop_per_s"] = peak_gflop_per_s;
    j["peak_fraction"] = peak_fraction();
    j["winograd"] = winograd;
    j["precision"] = precision;
  }
  return j;
}

Command add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.add_option("--model", o->model, "model of the end-to-end training step")->capture_default_str();
  app.add_option("--batch-size", o->batch_size, "batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--device", o->device, "cpu, cuda or all")
      ->check(CLI::IsMember({"cpu", "cuda", "all"}))
      ->capture_default_str();
  app.add_option("--channels", o->channels, "input channels")->check(CLI::PositiveNumber);
  app.add_option("--image-size", o->image_size, "input height and width")->check(CLI::PositiveNumber);
  app.add_option("--classes", o->classes, "class count")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o->warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  CLI::Option* repeats =
      app.add_option("--repeats", o->repeats, "timed steps (--peak: measurements, default 5)")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
  app.add_option("--threads", o->threads, "CPU threads (0: default)")->check(CLI::NonNegativeNumber);
  app.add_option("--precision", o->precision,
                 "the CPU's convolutions and matrix products: fp32, or bf16 (needs AVX512-BF16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_flag("--ops", o->ops, "also time the op-level benchmarks");
  app.add_flag("--peak", o->peak,
               "measure the CPU's FP32 FMA peak (and bf16 dot-product peak) on 1 and on all threads, alone");
  app.add_option("--peak-seconds", o->peak_seconds, "length of each peak measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--peak-gflops", o->peak_gflops,
                 "the CPU's FP32 peak in GFLOP/s for the steps' peak_fraction (default: measured)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", o->json, "one JSON object per benchmark");
  app.add_flag(
      "--compare-pytorch", o->compare_pytorch,
      "run bench/pytorch_reference.py with Debian's PyTorch and bench/.venv-torch2's, fp32 and bf16");
  app.add_option("--python", o->python, "python with Debian's torch, for --compare-pytorch")
      ->capture_default_str();
  app.add_option("--torch2-python", o->torch2_python,
                 "python with PyTorch 2.x (default: bench/.venv-torch2/bin/python, when it exists)");
  return [o, repeats] {
    o->repeats_given = repeats->count() > 0;
    apply_threads(o->threads);
    apply_precision(o->precision, o->device);
    // Under mpirun every rank runs the benchmarks (the training step together); rank 0 reports.
    const bool report = dist::world().rank() == 0;
    if (!o->json && report) fmt::print("{}\n", machine_summary());
    if (o->peak) {
      const std::vector<PeakResult> peaks = measure_peaks(o->peak_seconds, o->repeats_given ? o->repeats : 5);
      if (!report) return 0;
      if (o->json)
        for (const PeakResult& p : peaks) fmt::print("{}\n", p.to_json().dump());
      else
        print_peaks(peaks);
      return 0;
    }
    std::vector<Device> devices;
    if (o->device != "cuda") devices.push_back(Device::cpu());
    if (o->device == "cuda" || (o->device == "all" && cuda_available())) devices.push_back(Device::cuda());
    std::vector<PeakResult> measured_peak;
    const double cpu_peak = devices.front().is_cpu() ? cpu_peak_gflops(*o, measured_peak) : 0;
    std::vector<BenchResult> results;
    std::vector<nlohmann::json> extra;
    std::string pytorch_text;
    for (Device device : devices) {
      if (o->ops) {
        auto ops = op_benchmarks(*o, device);
        results.insert(results.end(), ops.begin(), ops.end());
      }
      const BenchResult step = train_step(*o, device, cpu_peak);
      results.push_back(step);
      if (o->compare_pytorch && report) {
        const PytorchComparison torch = compare_pytorch(*o, device, step);
        extra.insert(extra.end(), torch.rows.begin(), torch.rows.end());
        pytorch_text += torch.text;
      }
    }
    if (!report) return 0;
    if (o->json) {
      for (const BenchResult& r : results) fmt::print("{}\n", r.to_json().dump());
      for (const PeakResult& p : measured_peak) fmt::print("{}\n", p.to_json().dump());
      for (const auto& j : extra) fmt::print("{}\n", j.dump());
      return 0;
    }
    if (cpu_peak > 0)
      fmt::print("FP32 peak for % peak: {:.1f} GFLOP/s ({})\n", cpu_peak,
                 measured_peak.empty() ? std::string("--peak-gflops")
                                       : fmt::format("{}, measured", measured_peak.front().name()));
    print_table(results);
    fmt::print("{}", pytorch_text);
    return 0;
  };
}

}  // namespace kindling::app
