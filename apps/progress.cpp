#include "apps/progress.h"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

namespace kindling::app {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

Progress::Progress(std::string label, int64_t total_batches, bool quiet)
    : label_(std::move(label)),
      total_(total_batches),
      draw_(!quiet && isatty(fileno(stdout))),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(int64_t done, int64_t images_done, double mean_loss, double accuracy) {
  images_ = images_done;
  if (!draw_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
  last_draw_ = now;
  const double elapsed = seconds_since(start_);
  const double eta = done > 0 ? elapsed * double(total_ - done) / double(done) : 0.0;
  constexpr int kWidth = 24;
  const int filled = int(kWidth * done / std::max<int64_t>(total_, 1));
  fmt::print("\r{} [{}{}] {}/{} loss {:.4f} acc {:.2f}% {:.0f} img/s ETA {:.0f}s\033[K", label_,
             std::string(size_t(filled), '='), std::string(size_t(kWidth - filled), ' '), done, total_,
             mean_loss, 100.0 * accuracy, images_per_second(), eta);
  std::fflush(stdout);
}

double Progress::finish() {
  if (draw_) {
    fmt::print("\r\033[K");
    std::fflush(stdout);
  }
  return seconds_since(start_);
}

double Progress::images_per_second() const {
  const double s = seconds_since(start_);
  return s > 0 ? double(images_) / s : 0.0;
}

}  // namespace kindling::app
