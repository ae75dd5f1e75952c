// The one-process communicator, the choice of the world's implementation, deadlines and finish().
#include "dist/communicator.h"

#include "dist/backends.h"

#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace kindling::dist {

namespace {
std::atomic<bool> timed_out{false};
}  // namespace

bool collective_timed_out() { return timed_out; }

void Communicator::throw_timeout(const char* collective) const {
  timed_out = true;
  const std::string when = step_ < 0 ? "before training" : fmt::format("at step {}", step_);
  throw DistError(fmt::format(
      "rank {} of {}: {} {} did not complete within {} s (--dist-timeout): another rank stalled or died",
      rank(), size(), collective, when, timeout_s_));
}

void Communicator::check_reducible(const Tensor& t, const char* collective) {
  KINDLING_CHECK(t.defined() && t.is_contiguous(), DistError, "{}: expected a contiguous tensor, found {}",
                 collective, t.defined() ? t.describe() : "an undefined tensor");
  KINDLING_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::i64, DistError,
                 "{}: expected f32 or i64, found {}", collective, t.describe());
}

void wait_until(const Communicator& comm, const char* collective, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(comm.timeout());
  for (int polls = 0; !done(); ++polls) {
    // Spin briefly (collectives of a training step finish in microseconds to milliseconds), then
    // sleep so that a rank waiting on a slow peer leaves the core to it.
    if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    if ((polls & 63) == 0 && std::chrono::steady_clock::now() > deadline) comm.throw_timeout(collective);
  }
}

namespace {

class DoneWork final : public Work {
 public:
  void wait() override {}
};

// One rank: every collective is the identity.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  std::unique_ptr<Work> all_reduce_async(const Tensor& t) override {
    check_reducible(t, "all_reduce");
    return std::make_unique<DoneWork>();
  }
  void all_reduce_max(const Tensor& t) override { check_reducible(t, "all_reduce_max"); }
  void broadcast(const Tensor& t, int root) override {
    KINDLING_CHECK(root == 0, DistError, "broadcast: root {} out of range for 1 rank", root);
    KINDLING_CHECK(t.defined() && t.is_contiguous(), DistError, "broadcast: expected a contiguous tensor");
  }
  void barrier() override {}
};

bool mpi_started = false;

}  // namespace

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

Communicator& world() {
  static std::unique_ptr<Communicator> instance = []() -> std::unique_ptr<Communicator> {
#ifdef KINDLING_WITH_MPI
    if (launched_by_mpi()) {
      mpi_started = true;
      return make_mpi_world();
    }
#endif
    return std::make_unique<SingleProcess>();
  }();
  return *instance;
}

Communicator& for_device(Device device) {
#ifdef KINDLING_WITH_NCCL
  if (device.is_cuda()) {
    static std::unique_ptr<Communicator> nccl = make_nccl(world());
    return *nccl;
  }
#endif
  (void)device;
  return world();
}

int finish(int exit_code) {
#ifdef KINDLING_WITH_MPI
  if (mpi_started) mpi_finish(exit_code);
#endif
  return exit_code;
}

std::string mpi_version() {
#ifdef KINDLING_WITH_MPI
  return mpi_library_version();
#else
  return "not compiled in";
#endif
}

std::string nccl_version() {
#ifdef KINDLING_WITH_NCCL
  return nccl_library_version();
#else
  return "not compiled in";
#endif
}

}  // namespace kindling::dist
