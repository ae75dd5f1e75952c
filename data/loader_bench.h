// Throughput of the augmented CIFAR input pipeline (crop + flip + normalise + collate + prefetch) on
// synthetic CIFAR-shaped data, for `kindling bench`. Not a test: the figure depends on the machine.
#pragma once
#include <cstdint>

namespace kindling::data {

struct LoaderBenchResult {
  double images_per_second = 0;
  int64_t images = 0;  // images delivered in the timed epochs
  double seconds = 0;  // wall time of the timed epochs
};

// Builds `num_images` random 3x32x32 images, then times `epochs` full epochs of a shuffling,
// augmenting Loader (batch_size, num_workers threads) after one untimed warm-up epoch; the consumer
// does nothing with the batches. Requires num_images > 0, epochs > 0.
LoaderBenchResult bench_augmented_cifar_loader(int64_t num_images = 50000, int64_t batch_size = 128,
                                               int num_workers = 2, int epochs = 2);

// Convenience: bench_augmented_cifar_loader(...).images_per_second.
double augmented_cifar_images_per_second(int64_t num_images = 50000, int64_t batch_size = 128,
                                         int num_workers = 2, int epochs = 2);

}  // namespace kindling::data
