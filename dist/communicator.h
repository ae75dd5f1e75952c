// Communicator: the collectives of data-parallel training (rank, size, all_reduce, broadcast,
// barrier) behind one interface, with three implementations: one process (no launcher, or a build
// without MPI), MPI (the ranks that mpirun or srun started; CPU tensors, CUDA tensors staged through
// the host) and NCCL (CUDA tensors on NCCL's own stream, its unique id broadcast over MPI).
//
// Every blocking wait polls against a deadline (set_timeout, the --dist-timeout flag): a collective
// that does not complete in time throws DistError naming this rank, the collective and the step (set
// by set_step), and the command line then aborts the whole job (finish) instead of hanging.
#pragma once
#include "core/tensor.h"

#include <functional>
#include <memory>
#include <string>

namespace kindling {
struct DistError : Error {
  using Error::Error;
};  // a collective failed, timed out or disagreed
}  // namespace kindling

namespace kindling::dist {

// A collective started and not yet waited for. wait() blocks (against the deadline) until the
// tensor holds the result. A Work destroyed unwaited completes before its memory is reused, except
// after a timeout, when the job is about to be aborted.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"

  // In place over all ranks: t = sum of every rank's t (max for all_reduce_max). Requires a
  // contiguous f32 or i64 tensor of the same shape on every rank; empty tensors are allowed.
  virtual void all_reduce(const Tensor& t) { all_reduce_async(t)->wait(); }
  virtual std::unique_ptr<Work> all_reduce_async(const Tensor& t) = 0;
  virtual void all_reduce_max(const Tensor& t) = 0;
  // t = root's t on every rank. Requires a contiguous tensor of the same shape and dtype everywhere.
  virtual void broadcast(const Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  // Seconds a wait may block before it throws DistError (default 600).
  void set_timeout(double seconds) { timeout_s_ = seconds; }
  double timeout() const { return timeout_s_; }
  // The training step named by timeout messages (-1, the default: "before training").
  void set_step(int64_t step) { step_ = step; }
  int64_t step() const { return step_; }

  // Throws DistError: "rank R: <collective> at step S did not complete within T s (--dist-timeout)".
  [[noreturn]] void throw_timeout(const char* collective) const;

 protected:
  // Requires a contiguous f32 or i64 tensor; DistError naming the collective otherwise.
  static void check_reducible(const Tensor& t, const char* collective);

 private:
  double timeout_s_ = 600;
  int64_t step_ = -1;
};

// The process group this process belongs to: MPI's world when a launcher (mpirun, mpiexec, srun)
// started it and MPI is compiled in; else one rank. Initialises MPI on first call.
Communicator& world();
bool launched_by_mpi();  // a launcher's environment is present (without initialising anything)

// The communicator for tensors on `device`: NCCL over the world's ranks for CUDA when compiled in,
// else the world itself. Created on first call; the same object afterwards.
Communicator& for_device(Device device);

// Ends the process group: MPI_Finalize when exit_code is 0, else MPI_Abort so that no other rank
// waits forever on this one. Returns exit_code. Call once, at the end of main.
int finish(int exit_code);

// "Open MPI v4.1.4, ..." or "not compiled in"; likewise for NCCL ("2.28.3").
std::string mpi_version();
std::string nccl_version();

// True once any collective of this process has timed out (the job is then being aborted).
bool collective_timed_out();

// Polls `done` until it returns true, yielding the CPU; comm.throw_timeout(collective) when
// comm.timeout() seconds pass first.
void wait_until(const Communicator& comm, const char* collective, const std::function<bool()>& done);

}  // namespace kindling::dist
