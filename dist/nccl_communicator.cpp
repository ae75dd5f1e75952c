// The NCCL communicator: collectives on CUDA tensors over NCCL, on a stream of their own. A
// collective waits (through an event) for the compute stream's work that produced its tensor, and
// wait() makes the compute stream wait for the collective, so the host blocks only when polling the
// deadline. The unique id travels over the world's (MPI) broadcast; CPU tensors and barriers go
// to the world communicator.
#include "dist/backends.h"

#include "ops/cuda/cuda_context.h"

#include <fmt/core.h>
#include <nccl.h>

#include <cstring>

namespace kindling::dist {
namespace {

void check(ncclResult_t status, const char* call) {
  if (status != ncclSuccess) throw DistError(fmt::format("{} failed: {}", call, ncclGetErrorString(status)));
}
void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) throw DistError(fmt::format("{} failed: {}", call, cudaGetErrorString(status)));
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return ncclFloat32;
    case DType::i64:
      return ncclInt64;
    default:
      return ncclUint8;
  }
}

class NcclCommunicator;

class NcclWork final : public Work {
 public:
  NcclWork(NcclCommunicator& owner, const char* collective, Tensor tensor, cudaEvent_t done)
      : owner_(owner), collective_(collective), tensor_(std::move(tensor)), done_(done) {}
  ~NcclWork() override;
  void wait() override;

 private:
  NcclCommunicator& owner_;
  const char* collective_;
  Tensor tensor_;  // kept alive until NCCL has finished with its memory
  cudaEvent_t done_;
  bool waited_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& world) : world_(world) {
    ncclUniqueId id;
    if (world.rank() == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    Tensor id_bytes = zeros({int64_t((sizeof(id) + 7) / 8)}, TensorOptions{}.with_dtype(DType::i64));
    std::memcpy(id_bytes.data_ptr(), &id, sizeof(id));
    world.broadcast(id_bytes, 0);
    std::memcpy(&id, id_bytes.data_ptr(), sizeof(id));
    cuda::stream();  // selects the device before NCCL binds to it
    check(ncclCommInitRank(&comm_, world.size(), id, world.rank()), "ncclCommInitRank");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }
  int rank() const override { return world_.rank(); }
  int size() const override { return world_.size(); }
  std::string name() const override { return "nccl"; }

  std::unique_ptr<Work> all_reduce_async(const Tensor& t) override {
    if (!t.device().is_cuda()) return world_.all_reduce_async(t);
    check_reducible(t, "all_reduce");
    return launch(t, "all_reduce", [&] {
      return ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type(t.dtype()), ncclSum,
                           comm_, stream_);
    });
  }
  void all_reduce_max(const Tensor& t) override {
    if (!t.device().is_cuda()) return world_.all_reduce_max(t);
    check_reducible(t, "all_reduce_max");
    launch(t, "all_reduce_max", [&] {
      return ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type(t.dtype()), ncclMax,
                           comm_, stream_);
    })->wait();
  }
  void broadcast(const Tensor& t, int root) override {
    if (!t.device().is_cuda()) return world_.broadcast(t, root);
    KINDLING_CHECK(t.is_contiguous(), DistError, "broadcast: expected a contiguous tensor, found {}",
                   t.describe());
    launch(t, "broadcast", [&] {
      return ncclBroadcast(t.data_ptr(), t.data_ptr(), size_t(t.numel()) * dtype_size(t.dtype()), ncclUint8,
                           root, comm_, stream_);
    })->wait();
  }
  void barrier() override { world_.barrier(); }

  // Called by NcclWork::wait: polls the event and NCCL's asynchronous error against the deadline.
  void wait_for(const char* collective, cudaEvent_t done) {
    try {
      wait_until(*this, collective, [&] {
        ncclResult_t async_error = ncclSuccess;
        check(ncclCommGetAsyncError(comm_, &async_error), "ncclCommGetAsyncError");
        check(async_error, collective);
        const cudaError_t state = cudaEventQuery(done);
        if (state == cudaErrorNotReady) return false;
        check(state, "cudaEventQuery");
        return true;
      });
    } catch (const DistError&) {
      ncclCommAbort(comm_);  // frees the stream's pending kernels so the process can exit
      comm_ = nullptr;
      throw;
    }
    check(cudaStreamWaitEvent(cuda::stream(), done, 0), "cudaStreamWaitEvent");
  }

 private:
  template <typename Call>
  std::unique_ptr<Work> launch(const Tensor& t, const char* collective, Call call) {
    KINDLING_CHECK(comm_ != nullptr, DistError, "{}: the NCCL communicator was aborted", collective);
    cudaEvent_t ready = nullptr, done = nullptr;
    check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
    check(cudaEventRecord(ready, cuda::stream()), "cudaEventRecord");
    check(cudaStreamWaitEvent(stream_, ready, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(ready);
    if (t.numel() > 0) check(call(), collective);
    check(cudaEventRecord(done, stream_), "cudaEventRecord");
    return std::make_unique<NcclWork>(*this, collective, t, done);
  }

  Communicator& world_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

NcclWork::~NcclWork() {
  // Unwaited (an error unwinds): order the compute stream after the collective without blocking, so
  // the caching allocator does not hand the tensor's memory on while NCCL still writes it.
  if (!waited_) cudaStreamWaitEvent(cuda::stream(), done_, 0);
  cudaEventDestroy(done_);
}

void NcclWork::wait() {
  if (waited_) return;
  waited_ = true;
  owner_.wait_for(collective_, done_);
}

}  // namespace

std::unique_ptr<Communicator> make_nccl(Communicator& world) {
  auto nccl = std::make_unique<NcclCommunicator>(world);
  nccl->set_timeout(world.timeout());
  return nccl;
}

std::string nccl_library_version() {
  int version = 0;
  ncclGetVersion(&version);
  return fmt::format("{}.{}.{}", version / 10000, (version / 100) % 100, version % 100);
}

}  // namespace kindling::dist
