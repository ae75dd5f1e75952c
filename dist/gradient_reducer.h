// GradientReducer: sums the parameters' gradients over the ranks during backward, as PyTorch's DDP.
// Parameters are cut, in reverse order (the order backward produces their gradients), into buckets
// of about bucket_bytes; a post-accumulate-grad hook marks each gradient ready, and the buckets are
// launched (packed into one flat tensor, all_reduce_async) strictly in bucket order as soon as each
// is complete, so every rank issues the same collectives in the same order while the rest of
// backward runs. finish() launches what backward did not reach (unused parameters count as zero),
// waits, and writes the sums back into the gradients.
//
//   GradientReducer reducer(comm, model.parameters());
//   optimizer.zero_grad();  reducer.prepare();
//   (loss * local_count / global_count).backward();  reducer.finish();  optimizer.step();
#pragma once
#include "dist/communicator.h"

#include <vector>

namespace kindling::dist {

class GradientReducer {
 public:
  // Requires: parameters that require grad, on one device, f32. Registers the hooks.
  GradientReducer(Communicator& comm, std::vector<Tensor> parameters, int64_t bucket_bytes = 512 * 1024);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void prepare();  // before backward: every bucket pending
  void finish();   // after backward: every gradient holds the sum over ranks
  int64_t num_buckets() const { return int64_t(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> members;   // indices into parameters_, in reverse parameter order
    std::vector<int64_t> offsets;  // element offset of each member in flat
    Tensor flat;                   // f32 [sum of numel], the packed gradients
    size_t ready = 0;              // members whose gradient arrived this step
    std::unique_ptr<Work> work;
  };
  void on_ready(size_t parameter);
  void launch(Bucket& bucket);

  Communicator& comm_;
  std::vector<Tensor> parameters_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<uint8_t> arrived_;   // per parameter, this step
  size_t next_to_launch_ = 0;
  bool active_ = false;
};

// Replaces every tensor's values by rank `root`'s (parameters and buffers at start and after resume).
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root = 0);
// Replaces every tensor by the mean over ranks (BatchNorm's running statistics before eval/save).
void average_tensors(Communicator& comm, const std::vector<Tensor>& tensors);

}  // namespace kindling::dist
