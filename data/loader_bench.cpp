// Loader throughput on synthetic CIFAR data.
#include "data/loader_bench.h"

#include "core/error.h"
#include "core/rng.h"
#include "data/datasets.h"
#include "data/loader.h"

#include <chrono>

namespace kindling::data {

LoaderBenchResult bench_augmented_cifar_loader(int64_t num_images, int64_t batch_size, int num_workers,
                                               int epochs) {
  KINDLING_CHECK(num_images > 0 && epochs > 0, ValueError,
                 "loader bench: expected num_images > 0 and epochs > 0, found {} and {}", num_images, epochs);
  const DatasetInfo info = dataset_info("cifar10");
  ImageDataset dataset;
  dataset.name = "synthetic-cifar10";
  dataset.channels = 3, dataset.height = 32, dataset.width = 32;
  dataset.num_classes = 10;
  dataset.mean = info.mean;
  dataset.std = info.std;
  dataset.augment_by_default = true;
  dataset.images.resize(num_images * dataset.image_numel());
  dataset.labels.resize(num_images);
  Generator generator(1234);
  for (size_t i = 0; i < dataset.images.size(); i += 8) {
    const uint64_t bits = generator.next_u64();
    for (size_t k = 0; k < 8 && i + k < dataset.images.size(); ++k)
      dataset.images[i + k] = uint8_t(bits >> (8 * k));
  }
  for (auto& label : dataset.labels) label = static_cast<int64_t>(generator.next_u64() % 10);

  LoaderOptions options;
  options.batch_size = batch_size;
  options.num_workers = num_workers;
  options.augment = true;
  Loader loader(dataset, options);
  auto run_epoch = [&](int64_t epoch) {
    int64_t images = 0;
    loader.start_epoch(epoch);
    while (auto batch = loader.next()) images += batch->images.size(0);
    return images;
  };
  run_epoch(0);  // warm-up: threads, allocator blocks, page faults
  LoaderBenchResult result;
  const auto start = std::chrono::steady_clock::now();
  for (int e = 1; e <= epochs; ++e) result.images += run_epoch(e);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.images_per_second = result.seconds > 0 ? result.images / result.seconds : 0;
  return result;
}

double augmented_cifar_images_per_second(int64_t num_images, int64_t batch_size, int num_workers,
                                         int epochs) {
  return bench_augmented_cifar_loader(num_images, batch_size, num_workers, epochs).images_per_second;
}

}  // namespace kindling::data
