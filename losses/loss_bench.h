// Fused against composed: the time of one forward + backward of each loss through its fused
// kernel and through composed_loss (losses/composed_loss.h), for `kindling bench`. The goal is
// at least 5x over the composed version.
#pragma once
#include "core/dtype.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kindling {

struct LossBenchResult {
  std::string loss;  // the spec
  int64_t N = 0, C = 0;
  double fused_ms = 0;  // median of the repeats, forward + backward
  double composed_ms = 0;
  double speedup() const { return fused_ms > 0 ? composed_ms / fused_ms : 0.0; }
};

struct LossBenchSize {
  int64_t N, C;
};

// Every spec at every size on `device`: one warm-up, then the median of `repeats` timed runs of
// each version (the device is synchronized before the clock stops). Empty specs: every loss with
// its defaults; empty sizes: N = 128, C = 10 and N = 1024, C = 1000.
std::vector<LossBenchResult> bench_losses(std::vector<std::string> specs = {},
                                          std::vector<LossBenchSize> sizes = {},
                                          Device device = Device::cpu(), int repeats = 20);

// A table: loss, N, C, fused ms, composed ms, speedup.
std::string format_loss_bench(const std::vector<LossBenchResult>& results);

}  // namespace kindling
