// Loader: per-epoch permutation, batch assembly through ImageTransform, and a bounded set of
// prefetch slots filled by worker threads and drained in order by next().
#include "data/loader.h"

#include "core/error.h"
#include "core/rng.h"
#include "data/shuffle.h"

#include <algorithm>
#include <numeric>

namespace kindling::data {

namespace {

// Salts that keep the shuffle and augmentation streams of one seed independent.
constexpr uint64_t kShuffleSalt = 0x5f1a7e2b9c3d4e01ULL;
constexpr uint64_t kAugmentSalt = 0xa4093822299f31d0ULL;

const LoaderOptions& checked(const LoaderOptions& options, const ImageDataset& dataset) {
  KINDLING_CHECK(options.batch_size > 0, ValueError, "loader for {}: expected batch_size > 0, found {}",
                 dataset.name, options.batch_size);
  KINDLING_CHECK(options.num_workers >= 0, ValueError, "loader for {}: expected num_workers >= 0, found {}",
                 dataset.name, options.num_workers);
  KINDLING_CHECK(options.crop_padding >= 0, ValueError, "loader for {}: expected crop_padding >= 0, found {}",
                 dataset.name, options.crop_padding);
  KINDLING_CHECK(options.prefetch_batches > 0, ValueError,
                 "loader for {}: expected prefetch_batches > 0, found {}", dataset.name,
                 options.prefetch_batches);
  KINDLING_CHECK(options.world_size > 0 && options.rank >= 0 && options.rank < options.world_size, ValueError,
                 "loader for {}: rank {} out of range for world_size {}", dataset.name, options.rank,
                 options.world_size);
  check_consistent(dataset);
  return options;
}

}  // namespace

ShareRange batch_share(int64_t count, int rank, int world_size) {
  return {count * rank / world_size, count * (rank + 1) / world_size};
}

Loader::Loader(const ImageDataset& dataset, LoaderOptions options)
    : dataset_(dataset),
      options_(checked(options, dataset)),
      augment_(options.augment.value_or(dataset.augment_by_default)),
      transform_(dataset.channels, dataset.height, dataset.width, dataset.mean, dataset.std,
                 options.normalize),
      num_batches_(options.drop_last ? dataset.size() / options.batch_size
                                     : (dataset.size() + options.batch_size - 1) / options.batch_size),
      slots_(std::max<int64_t>(options.prefetch_batches, options.num_workers)) {}

Loader::~Loader() { stop_workers(); }

int64_t Loader::num_samples() const {
  return options_.drop_last ? num_batches_ * options_.batch_size : dataset_.size();
}

void Loader::start_epoch(int64_t epoch) {
  stop_workers();
  epoch_ = epoch;
  const auto epoch_bits = static_cast<uint64_t>(epoch);
  if (options_.shuffle) {
    Generator generator(random_bits(options_.seed ^ kShuffleSalt, epoch_bits));
    order_ = random_permutation(dataset_.size(), generator);
  } else {
    order_.resize(dataset_.size());
    std::iota(order_.begin(), order_.end(), int64_t{0});
  }
  augment_key_ = random_bits(options_.seed ^ kAugmentSalt, epoch_bits);
  next_to_claim_ = 0;
  next_to_consume_ = 0;
  for (auto& slot : slots_) slot = Slot{};
  stopping_ = false;
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

std::optional<Batch> Loader::next() {
  if (epoch_ < 0) start_epoch(0);
  if (options_.num_workers == 0) {
    if (next_to_consume_ >= num_batches_) return std::nullopt;
    return make_batch(next_to_consume_++);
  }
  Slot slot;
  {
    std::unique_lock lock(mutex_);
    if (next_to_consume_ >= num_batches_) return std::nullopt;
    const int64_t wanted = next_to_consume_;
    Slot& ready = slots_[wanted % slots_.size()];
    changed_.wait(lock, [&] { return ready.index == wanted; });
    slot = std::move(ready);
    ready = Slot{};
    ++next_to_consume_;
  }
  changed_.notify_all();  // a slot is free: a waiting worker may claim the next batch
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

CropFlip Loader::crop_flip_for(int64_t index) const {
  return draw_crop_flip(random_bits(augment_key_, static_cast<uint64_t>(index)), options_.crop_padding,
                        augment_, augment_);
}

Batch Loader::make_batch(int64_t batch_index) const {
  const int64_t global_first = batch_index * options_.batch_size;
  const int64_t global_count = std::min(options_.batch_size, dataset_.size() - global_first);
  const ShareRange share = batch_share(global_count, options_.rank, options_.world_size);
  const int64_t first = global_first + share.begin;
  const int64_t count = share.end - share.begin;
  const int64_t C = dataset_.channels, H = dataset_.height, W = dataset_.width;
  Batch batch;
  batch.index = batch_index;
  batch.global_size = global_count;
  batch.images = empty({count, C, H, W}, TensorOptions{}.with_dtype(DType::f32));
  batch.labels = empty({count}, TensorOptions{}.with_dtype(DType::i64));
  float* images = batch.images.data<float>();
  int64_t* labels = batch.labels.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t index = order_[first + i];
    transform_.apply(dataset_.image(index).data(), crop_flip_for(index), options_.crop_padding,
                     images + i * C * H * W);
    labels[i] = dataset_.labels[index];
  }
  return batch;
}

void Loader::worker_loop() {
  const auto capacity = static_cast<int64_t>(slots_.size());
  for (;;) {
    int64_t batch_index;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] {
        return stopping_ || next_to_claim_ >= num_batches_ || next_to_claim_ < next_to_consume_ + capacity;
      });
      if (stopping_ || next_to_claim_ >= num_batches_) return;
      batch_index = next_to_claim_++;
    }
    Slot slot;
    slot.index = batch_index;
    try {
      slot.batch = make_batch(batch_index);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      slots_[batch_index % capacity] = std::move(slot);
    }
    changed_.notify_all();
  }
}

void Loader::stop_workers() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

}  // namespace kindling::data
