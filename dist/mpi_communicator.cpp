// The MPI communicator: MPI_COMM_WORLD of the ranks a launcher started. Collectives are the
// non-blocking MPI_I* calls completed by polling MPI_Test against the deadline, so that a stalled peer
// becomes an error rather than a hang. CUDA tensors are staged through host memory.
#include "dist/backends.h"

#include <fmt/core.h>
#include <mpi.h>

namespace kindling::dist {
namespace {

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return MPI_FLOAT;
    case DType::i64:
      return MPI_INT64_T;
    default:
      return MPI_BYTE;
  }
}

void check(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw DistError(fmt::format("{} failed: {}", call, std::string(text, size_t(length))));
}

// A request on a host buffer; for a CUDA tensor the buffer is a host copy written back on wait().
class MpiWork final : public Work {
 public:
  MpiWork(const Communicator& comm, const char* collective, Tensor target, Tensor host)
      : comm_(comm), collective_(collective), target_(std::move(target)), host_(std::move(host)) {}
  // An error unwinds past an unwaited collective: complete it (MPI may still write the buffer)
  // within the deadline, unless a collective already timed out and the job is about to be aborted.
  ~MpiWork() override {
    if (request_ == MPI_REQUEST_NULL || collective_timed_out()) return;
    try {
      wait();
    } catch (const std::exception&) {
    }
  }
  MPI_Request* request() { return &request_; }
  void wait() override {
    wait_until(comm_, collective_, [&] {
      int done = 0;
      check(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test");
      return done != 0;
    });

    if (!target_.is_same(host_)) target_.copy_(host_);
  }

 private:
  const Communicator& comm_;
  const char* collective_;
  Tensor target_, host_;
  MPI_Request request_ = MPI_REQUEST_NULL;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    // Errors come back as codes (and become DistError) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  std::unique_ptr<Work> all_reduce_async(const Tensor& t) override {
    return start_all_reduce(t, MPI_SUM, "all_reduce");
  }
  void all_reduce_max(const Tensor& t) override { start_all_reduce(t, MPI_MAX, "all_reduce_max")->wait(); }

  void broadcast(const Tensor& t, int root) override {
    KINDLING_CHECK(t.defined() && t.is_contiguous(), DistError, "broadcast: expected a contiguous tensor");
    KINDLING_CHECK(root >= 0 && root < size_, DistError, "broadcast: root {} out of range for {} ranks", root,
                   size_);
    const Tensor host = t.device().is_cuda() ? t.cpu() : t;
    auto work = std::make_unique<MpiWork>(*this, "broadcast", t, host);
    check(MPI_Ibcast(host.data_ptr(), int(host.numel() * int64_t(dtype_size(host.dtype()))), MPI_BYTE, root,
                     MPI_COMM_WORLD, work->request()),
          "MPI_Ibcast");
    work->wait();
  }

  void barrier() override {
    MpiWork work(*this, "barrier", Tensor(), Tensor());
    check(MPI_Ibarrier(MPI_COMM_WORLD, work.request()), "MPI_Ibarrier");
    work.wait();
  }

 private:
  std::unique_ptr<Work> start_all_reduce(const Tensor& t, MPI_Op op, const char* collective) {
    check_reducible(t, collective);
    const Tensor host = t.device().is_cuda() ? t.cpu() : t;
    auto work = std::make_unique<MpiWork>(*this, collective, t, host);
    // An empty tensor still takes part, so that every rank issues the same collectives in order.
    check(MPI_Iallreduce(MPI_IN_PLACE, host.numel() ? host.data_ptr() : nullptr, int(host.numel()),
                         mpi_type(host.dtype()), op, MPI_COMM_WORLD, work->request()),
          "MPI_Iallreduce");
    return work;
  }

  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_world() {
  int provided = 0;
  // Only the main thread calls MPI; the thread pool and the loader's workers never do.
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  return std::make_unique<MpiCommunicator>();
}

void mpi_finish(int exit_code) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (exit_code != 0) MPI_Abort(MPI_COMM_WORLD, exit_code);
  MPI_Finalize();
}

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, size_t(length));
  if (const size_t comma = version.find(','); comma != std::string::npos) version.resize(comma);
  return version;
}

}  // namespace kindling::dist
