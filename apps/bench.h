// What the parts of `kindling bench` share: its options, one result row, and the measurements that
// live in their own files (bench_peak.cpp: the CPU's arithmetic peak; bench_pytorch.cpp: PyTorch's
// twin of the training step, Debian's 1.13 and a 2.x virtual environment).
#pragma once
#include "core/dtype.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace kindling::app {

struct BenchOptions {
  std::string model = "resnet20";
  int64_t batch_size = 128, channels = 3, image_size = 32, classes = 10;
  std::string device = "cpu";
  std::string precision = "fp32";  // the CPU's GEMMs (core/precision.h)
  int warmup = 3, repeats = 20, threads = 0;
  bool repeats_given = false;  // --peak takes 5 repeats of its longer measurements unless told
  bool ops = false, json = false, compare_pytorch = false, peak = false;
  double peak_seconds = 0.2;  // each peak measurement; best of the repeats
  double peak_gflops = 0;     // > 0: the peak for peak_fraction, given instead of measured
  std::string python = "/usr/bin/python3";
  std::string torch2_python;  // default: bench/.venv-torch2/bin/python of the source tree
};

// One row of the table and one JSON object.
struct BenchResult {
  std::string name, device;
  double ms_median = 0, ms_min = 0, ms_max = 0;
  double images_per_s = -1, gflop_per_s = -1;
  double gflop_per_image = -1;   // training steps: forward and backward, nn/flops.h
  double peak_gflop_per_s = -1;  // CPU training steps: the FP32 peak the step is measured against
  bool winograd = false;         // CPU training steps: 3×3 stride-1 layers by Winograd (GFLOP/s effective)
  std::string precision;         // CPU training steps: fp32 or bf16
  size_t peak_bytes = 0;
  double peak_fraction() const { return peak_gflop_per_s > 0 ? gflop_per_s / peak_gflop_per_s : -1; }
  nlohmann::json to_json() const;
};

// ---- bench_peak.cpp ----
// One measurement of a peak kernel (ops/cpu/peak.h) on `threads` threads: the best of `repeats`
// runs of about `seconds` each.
struct PeakResult {
  std::string kernel, isa;  // "fp32_fma", "avx512"
  int threads = 1, chains = 0, repeats = 0;
  double gflop_per_s = 0, best_seconds = 0;
  std::string name() const;  // "peak/fp32_fma/1thread", "peak/fp32_fma/2threads"
  nlohmann::json to_json() const;
};
// Every peak kernel the CPU has, on one thread and on all of kindling's threads.
std::vector<PeakResult> measure_peaks(double seconds, int repeats);
// The FP32 FMA peak on all of kindling's threads, alone.
PeakResult measure_fp32_peak(double seconds, int repeats);
void print_peaks(const std::vector<PeakResult>& peaks);

// ---- bench_pytorch.cpp ----
// PyTorch's runs of one training step: JSON rows, and the text printed after kindling's table.
struct PytorchComparison {
  std::vector<nlohmann::json> rows;
  std::string text;
};
// Runs bench/pytorch_reference.py for the training step of `step` with Debian's python and, when
// it exists, the PyTorch 2.x virtual environment's, each in fp32 and in bf16 autocast, at kindling's
// thread count. Rows: one per run, then one per precision against the faster PyTorch. A python
// without torch is skipped with one line on stderr.
PytorchComparison compare_pytorch(const BenchOptions& o, Device device, const BenchResult& step);

}  // namespace kindling::app
