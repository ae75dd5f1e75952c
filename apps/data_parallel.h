// The data-parallel side of a training run (mpirun -np N kindling train): the checks at start,
// the sharding of the loaders, the broadcast of the model, the gradient all-reduce around backward,
// the collective loss, and BatchNorm's running statistics. With one rank every call is a no-op or
// the plain single-process action, so run_training reads the same either way.
#pragma once
#include "apps/train_config.h"
#include "data/loader.h"
#include "dist/communicator.h"
#include "dist/gradient_reducer.h"
#include "nn/module.h"

#include <memory>

namespace kindling::app {

class DataParallel {
 public:
  // Joins the world (MPI_Init under a launcher) and checks that every rank got the same flags
  // (UsageError naming the first differing option) and that --batch-size splits evenly. Sets the
  // collective timeout and, for --device cuda, one GPU per rank of a node (by its local rank)
  // unless CUDA_VISIBLE_DEVICES is set. Call before anything touches the device.
  explicit DataParallel(const TrainConfig& requested);

  // The configuration this rank runs: on ranks other than 0, quiet and without --out (rank 0
  // alone prints and writes).
  const TrainConfig& config() const { return config_; }
  int rank() const { return world_.rank(); }
  int size() const { return world_.size(); }

  // This rank's share of every batch. UsageError when the last batch of `dataset_size` samples
  // would leave a rank without samples.
  void shard(data::LoaderOptions& options, int64_t dataset_size) const;

  // The model as built or resumed: parameters and buffers take rank 0's values; the gradient
  // reducer hooks onto the parameters; --sync-bn turns every BatchNorm2d into sync BN.
  void attach(Module& model, Device device);

  // The mean loss over the global batch, the same on every rank (so a non-finite loss stops all
  // ranks alike). local_loss is this rank's mean over its local_count samples. `step` counts the
  // steps taken before this one: collectives from here on name step + 1 when they time out.
  double global_loss(const Tensor& local_loss, int64_t local_count, int64_t global_count, int64_t step);
  // backward of the global mean loss: this rank's loss weighted by its share, gradients summed.
  void backward(const Tensor& local_loss, int64_t local_count, int64_t global_count);
  int64_t sum(int64_t local);

  // Before an evaluation or a checkpoint: BatchNorm's running statistics averaged over the ranks.
  void sync_buffers(Module& model);
  // After rank 0's writes: no rank runs ahead of the files.
  void barrier() { world_.barrier(); }

 private:
  dist::Communicator& world_;
  dist::Communicator* device_comm_ = nullptr;
  TrainConfig config_;
  std::unique_ptr<dist::GradientReducer> reducer_;
};

}  // namespace kindling::app
