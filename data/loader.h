// Loader: turns an ImageDataset into a stream of batches for one epoch at a time.
//   Loader loader(dataset, options);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) { ... batch->images, batch->labels ... }
//   }
// Batches are the same for a (seed, epoch) whatever num_workers is: the order is a permutation drawn
// from a Generator seeded by (seed, epoch), and each sample's crop and flip come from
// random_bits(key(seed, epoch), sample index), never from a generator shared between threads.
#pragma once
#include "core/tensor.h"
#include "data/augment.h"
#include "data/image_dataset.h"

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace kindling::data {

struct Batch {
  Tensor images;            // f32 [N, C, H, W], normalised (and augmented when enabled), on the CPU
  Tensor labels;            // i64 [N]
  int64_t index = 0;        // position of this batch in the epoch
  int64_t global_size = 0;  // samples of the whole batch over all ranks (N when world_size is 1)
};

// The share [begin, end) of a batch of `count` samples that rank `rank` of `world_size` takes:
// contiguous, in rank order, equal when world_size divides count (else the sizes differ by one).
struct ShareRange {
  int64_t begin = 0, end = 0;
};
ShareRange batch_share(int64_t count, int rank, int world_size);

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;     // a fresh permutation every epoch; false keeps the dataset order
  bool drop_last = false;  // drop the final batch when it is smaller than batch_size
  uint64_t seed = 0;
  // Random crop (from the image padded by crop_padding zero pixels) and horizontal flip. Unset
  // means the dataset's default: on for CIFAR, off for the MNIST family. Turn it off for evaluation.
  std::optional<bool> augment;
  int64_t crop_padding = 4;
  bool normalize = true;         // (pixel / 255 - mean) / std with the dataset's constants; else pixel / 255
  int num_workers = 1;           // prefetch threads; 0 builds each batch inside next()
  int64_t prefetch_batches = 4;  // batches prepared ahead of the consumer (at least num_workers)
  // Data-parallel sharding: each batch_size batch of the shared (seed, epoch) order is cut into
  // world_size contiguous shares and this loader yields share `rank`. batch_size stays global, so
  // the order, the augmentation of each sample and num_batches() do not depend on world_size.
  int rank = 0;
  int world_size = 1;
};

class Loader {
 public:
  // Requires: `dataset` outlives the loader and is consistent (check_consistent); options valid
  // (batch_size > 0, num_workers >= 0, crop_padding >= 0, prefetch_batches > 0), else ValueError.
  Loader(const ImageDataset& dataset, LoaderOptions options = {});
  Loader(ImageDataset&&, LoaderOptions = {}) = delete;  // would dangle: keep the dataset alive
  ~Loader();                                            // stops and joins the workers, even mid-epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Draws the epoch's order and starts preparing its batches; abandons any unfinished epoch.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch, or nullopt at its end. Starts epoch 0 when no epoch was
  // started. Rethrows an error raised while a worker built this batch.
  std::optional<Batch> next();

  int64_t num_batches() const { return num_batches_; }
  int64_t num_samples() const;              // samples per epoch after drop_last
  int64_t epoch() const { return epoch_; }  // -1 before the first epoch
  bool augmenting() const { return augment_; }
  const std::vector<int64_t>& order() const { return order_; }  // dataset indices of this epoch
  const ImageDataset& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }
  // The crop and flip that sample `index` gets in the current epoch (what the batches apply).
  CropFlip crop_flip_for(int64_t index) const;

 private:
  struct Slot {
    int64_t index = -1;  // which batch the slot holds; -1 when empty
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  Batch make_batch(int64_t batch_index) const;
  void worker_loop();
  void stop_workers();

  const ImageDataset& dataset_;
  LoaderOptions options_;
  bool augment_;
  ImageTransform transform_;
  int64_t num_batches_;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
  uint64_t augment_key_ = 0;

  // Prefetching: workers claim batch indices in order and put batch b in slot b % slots_.size();
  // a worker may claim b only while b < next_to_consume_ + slots_.size(), so a slot is never
  // overwritten before it was consumed.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Slot> slots_;
  int64_t next_to_claim_ = 0;
  int64_t next_to_consume_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace kindling::data
