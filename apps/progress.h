// The per-epoch progress line: on a terminal one line redrawn in place (batch count, loss,
// accuracy, images/s, ETA); otherwise nothing until the epoch ends, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace kindling::app {

class Progress {
 public:
  Progress(std::string label, int64_t total_batches, bool quiet);
  // After each batch: running means of loss and accuracy over the epoch so far.
  void update(int64_t batches_done, int64_t images_done, double mean_loss, double accuracy);
  // Clears the line on a terminal; returns seconds since construction.
  double finish();
  double images_per_second() const;

 private:
  std::string label_;
  int64_t total_;
  bool draw_;
  int64_t images_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace kindling::app
