// `kindling bench --peak`: the CPU's arithmetic peak, from the register-only kernels of
// ops/cpu/peak.h run on one thread and on every thread of kindling's pool at once. A measurement
// lasts about --peak-seconds (0.2 s: the clock's resolution and the start and end of the threads are
// then far below 1 % of it), after a calibration that also brings the cores to their working clock,
// and the best of the repeats is kept: on a shared machine other processes only slow a run. The
// calibration counts the thread's CPU time, which time spent descheduled does not inflate.
#include "apps/bench.h"
#include "core/parallel.h"
#include "ops/cpu/peak.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <vector>

namespace kindling::app {
namespace {

volatile float sink;  // the kernels' results go here, so that no run is optimised away

// Wall seconds of `rounds` rounds of `kernel` on each of `threads` threads, started together.
double time_rounds(const cpu::PeakKernel& kernel, int threads, int64_t rounds) {
  std::vector<float> results(size_t(threads), 0.0f);
  const auto t0 = std::chrono::steady_clock::now();
  if (threads == 1) {
    results[0] = kernel.run(rounds);
  } else {
    parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) results[size_t(t)] = kernel.run(rounds);
    });
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (float r : results) sink = sink + r;
  return seconds;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// The rounds one thread runs in about `seconds`: double them until a run takes a quarter of that
// in CPU time, then scale.
int64_t calibrate(const cpu::PeakKernel& kernel, double seconds) {
  for (int64_t rounds = 1 << 12;; rounds *= 2) {
    const double start = thread_cpu_seconds();
    sink = kernel.run(rounds);
    const double elapsed = thread_cpu_seconds() - start;
    if (elapsed >= seconds / 4) return std::max<int64_t>(1, int64_t(double(rounds) * seconds / elapsed));
  }
}

PeakResult measure(const cpu::PeakKernel& kernel, int threads, double seconds, int repeats) {
  const int64_t rounds = calibrate(kernel, seconds);
  double best = time_rounds(kernel, threads, rounds);
  for (int r = 1; r < repeats; ++r) best = std::min(best, time_rounds(kernel, threads, rounds));
  PeakResult result;
  result.kernel = kernel.name;
  result.isa = kernel.isa;
  result.threads = threads;
  result.chains = kernel.chains;
  result.repeats = repeats;
  result.best_seconds = best;
  result.gflop_per_s = double(threads) * double(rounds) * kernel.flops_per_round / best * 1e-9;
  return result;
}

}  // namespace

std::string PeakResult::name() const {
  return fmt::format("peak/{}/{}thread{}", kernel, threads, threads == 1 ? "" : "s");
}

nlohmann::json PeakResult::to_json() const {
  return {{"name", name()},     {"device", "cpu"},
          {"threads", threads}, {"isa", isa},
          {"chains", chains},   {"gflop_per_s", gflop_per_s},
          {"repeats", repeats}, {"ms_min", best_seconds * 1e3}};
}

std::vector<PeakResult> measure_peaks(double seconds, int repeats) {
  std::vector<PeakResult> peaks;
  for (const cpu::PeakKernel& kernel : cpu::peak_kernels()) {
    peaks.push_back(measure(kernel, 1, seconds, repeats));
    if (num_threads() > 1) peaks.push_back(measure(kernel, num_threads(), seconds, repeats));
  }
  return peaks;
}

PeakResult measure_fp32_peak(double seconds, int repeats) {
  return measure(cpu::peak_kernels().front(), num_threads(), seconds, repeats);
}

void print_peaks(const std::vector<PeakResult>& peaks) {
  fmt::print("{:<28} {:>7} {:>12} {:>7} {:>10} {:>10}\n", "peak", "threads", "isa", "chains", "best ms",
             "GFLOP/s");
  for (const PeakResult& p : peaks)
    fmt::print("{:<28} {:>7} {:>12} {:>7} {:>10.1f} {:>10.1f}\n", p.name(), p.threads, p.isa, p.chains,
               p.best_seconds * 1e3, p.gflop_per_s);
}

}  // namespace kindling::app
