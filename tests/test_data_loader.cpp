// Loader: determinism across thread counts, per-epoch shuffles, drop_last, normalisation, the
// crop/flip geometry on a known image, clean shutdown, and the throughput benchmark entry point.
#include "core/rng.h"
#include "data/augment.h"
#include "data/datasets.h"
#include "data/loader.h"
#include "data/loader_bench.h"
#include "test_data_files.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>

using namespace kindling;
using namespace kindling::data;
using namespace kindling::test;

namespace {

// `count` CIFAR-shaped images with distinct pixels and labels i % 10.
ImageDataset toy_cifar(int64_t count) {
  const DatasetInfo info = dataset_info("cifar10");
  ImageDataset d;
  d.name = "toy-cifar";
  d.channels = 3, d.height = 32, d.width = 32, d.num_classes = 10;
  d.images = pattern_images(count, 3072);
  for (int64_t i = 0; i < count; ++i) d.labels.push_back(i % 10);
  d.mean = info.mean;
  d.std = info.std;
  d.augment_by_default = true;
  return d;
}

LoaderOptions options_with(int64_t batch_size, int num_workers) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.num_workers = num_workers;
  return options;
}

struct EpochData {
  std::vector<float> images;
  std::vector<int64_t> labels;
  std::vector<int64_t> batch_sizes;
};

EpochData collect(Loader& loader, int64_t epoch) {
  EpochData out;
  loader.start_epoch(epoch);
  int64_t expected_index = 0;
  while (auto batch = loader.next()) {
    CHECK(batch->index == expected_index++);
    const auto images = batch->images.to_vector<float>();
    const auto labels = batch->labels.to_vector<int64_t>();
    out.images.insert(out.images.end(), images.begin(), images.end());
    out.labels.insert(out.labels.end(), labels.begin(), labels.end());
    out.batch_sizes.push_back(batch->images.size(0));
  }
  CHECK_FALSE(loader.next().has_value());  // stays finished
  return out;
}

// Reference for ImageTransform::apply, written directly from the formula in its header.
float expected_pixel(const ImageDataset& d, int64_t n, int64_t c, int64_t y, int64_t x, const CropFlip& crop,
                     int64_t padding) {
  const int64_t sy = y + crop.dy - padding;
  const int64_t sx = (crop.flip ? d.width - 1 - x : x) + crop.dx - padding;
  const bool inside = sy >= 0 && sy < d.height && sx >= 0 && sx < d.width;
  const float pixel = inside ? d.image(n)[(c * d.height + sy) * d.width + sx] : 0.0f;
  return (pixel / 255.0f - d.mean[c]) / d.std[c];
}

}  // namespace

TEST_CASE("loader: the same batches for a seed whatever the number of worker threads") {
  const ImageDataset d = toy_cifar(103);
  LoaderOptions options;
  options.batch_size = 16;
  options.seed = 7;
  std::vector<EpochData> runs;
  for (int workers : {0, 1, 3}) {
    options.num_workers = workers;
    options.prefetch_batches = workers == 3 ? 3 : 2;
    Loader loader(d, options);
    CHECK(loader.augmenting());
    collect(loader, 0);
    runs.push_back(collect(loader, 1));  // epoch 1 after epoch 0: no state leaks between epochs
  }
  REQUIRE(runs[0].labels.size() == 103);
  CHECK(runs[1].images == runs[0].images);
  CHECK(runs[2].images == runs[0].images);
  CHECK(runs[1].labels == runs[0].labels);
  CHECK(runs[2].labels == runs[0].labels);
}

TEST_CASE("loader: the order depends only on (seed, epoch) and differs between epochs") {
  const ImageDataset d = toy_cifar(50);
  LoaderOptions options;
  options.batch_size = 8;
  options.num_workers = 0;
  Loader loader(d, options);
  loader.start_epoch(0);
  const auto epoch0 = loader.order();
  loader.start_epoch(1);
  const auto epoch1 = loader.order();
  loader.start_epoch(0);
  CHECK(loader.order() == epoch0);
  CHECK(epoch1 != epoch0);
  auto sorted = epoch0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) CHECK(sorted[i] == i);  // a permutation
  options.seed = 1;
  Loader other_seed(d, options);
  other_seed.start_epoch(0);
  CHECK(other_seed.order() != epoch0);
  // Labels arrive in the order's order.
  const EpochData data = collect(loader, 1);
  for (int64_t i = 0; i < 50; ++i) CHECK(data.labels[i] == epoch1[i] % 10);
  // Without shuffle, the dataset order.
  options.shuffle = false;
  Loader ordered(d, options);
  CHECK(collect(ordered, 5).labels == d.labels);
  // next() before any start_epoch runs epoch 0.
  Loader implicit(d, options_with(50, 0));
  auto first = implicit.next();
  REQUIRE(first.has_value());
  CHECK(implicit.epoch() == 0);
  CHECK(first->labels.to_vector<int64_t>() == collect(implicit, 0).labels);
}

TEST_CASE("loader: drop_last drops the short final batch, otherwise it is kept") {
  const ImageDataset d = toy_cifar(103);
  LoaderOptions options;
  options.batch_size = 16;
  Loader keep(d, options);
  CHECK(keep.num_batches() == 7);
  CHECK(keep.num_samples() == 103);
  CHECK(collect(keep, 0).batch_sizes == std::vector<int64_t>{16, 16, 16, 16, 16, 16, 7});
  options.drop_last = true;
  Loader drop(d, options);
  CHECK(drop.num_batches() == 6);
  CHECK(drop.num_samples() == 96);
  const EpochData dropped = collect(drop, 0);
  CHECK(dropped.batch_sizes == std::vector<int64_t>(6, 16));
  CHECK(dropped.images.size() == 96u * 3072u);
  options.batch_size = 200;
  Loader none(d, options);
  CHECK(none.num_batches() == 0);
  CHECK(collect(none, 0).labels.empty());
}

TEST_CASE("loader: batches are f32 [N,C,H,W] and i64 [N], normalised with the dataset's constants") {
  const ImageDataset d = toy_cifar(5);
  LoaderOptions options;
  options.batch_size = 4;
  options.shuffle = false;
  options.augment = false;
  Loader loader(d, options);
  CHECK_FALSE(loader.augmenting());
  auto batch = loader.next();
  REQUIRE(batch.has_value());
  CHECK(batch->images.shape() == Shape{4, 3, 32, 32});
  CHECK(batch->images.dtype() == DType::f32);
  CHECK(batch->labels.shape() == Shape{4});
  CHECK(batch->labels.dtype() == DType::i64);
  const auto values = batch->images.to_vector<float>();
  // Sample 1, channel 2 (blue), pixel (5, 9): (p / 255 - 0.4465) / 0.2616.
  const uint8_t pixel = d.image(1)[2 * 1024 + 5 * 32 + 9];
  CHECK(values[1 * 3072 + 2 * 1024 + 5 * 32 + 9] ==
        doctest::Approx((pixel / 255.0 - 0.4465) / 0.2616).epsilon(1e-5));
  for (int64_t i = 0; i < 4 * 3072; ++i) {
    const int64_t n = i / 3072, c = (i % 3072) / 1024;
    if (values[i] != doctest::Approx((d.images[i] / 255.0 - d.mean[c]) / d.std[c]).epsilon(1e-5)) {
      FAIL("normalised value differs at element " << i << " of sample " << n);
    }
  }
  options.normalize = false;
  Loader raw(d, options);
  CHECK(raw.next()->images.to_vector<float>()[7] == doctest::Approx(d.images[7] / 255.0));
}

TEST_CASE("augment: crop and flip move pixels as the formula says on a known image") {
  const ImageDataset d = toy_cifar(1);
  const ImageTransform transform(3, 32, 32, d.mean, d.std, true);
  std::vector<float> out(3072);
  const std::vector<CropFlip> crops = {
      {4, 4, false},  // identity
      {4, 4, true},   // pure mirror
      {0, 0, false},  // shifted down-right: 4 rows and columns of padding at the top and left
      {8, 2, false}, {1, 7, true}, {8, 8, true}};
  for (const CropFlip& crop : crops) {
    CAPTURE(crop.dy);
    CAPTURE(crop.dx);
    CAPTURE(crop.flip);
    transform.apply(d.image(0).data(), crop, 4, out.data());
    int64_t mismatches = 0;
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 32; ++y)
        for (int64_t x = 0; x < 32; ++x)
          mismatches += out[(c * 32 + y) * 32 + x] != expected_pixel(d, 0, c, y, x, crop, 4);
    CHECK(mismatches == 0);
  }
  // Spot checks written out by hand: the mirror puts pixel (y, 31) at (y, 0); the (0, 0) crop puts
  // padding (value of pixel 0) at (3, 3) and pixel (0, 0) at (4, 4).
  transform.apply(d.image(0).data(), {4, 4, true}, 4, out.data());
  CHECK(out[5 * 32 + 0] == transform.value(0, d.image(0)[5 * 32 + 31]));
  transform.apply(d.image(0).data(), {0, 0, false}, 4, out.data());
  CHECK(out[3 * 32 + 3] == transform.value(0, 0));
  CHECK(out[4 * 32 + 4] == transform.value(0, d.image(0)[0]));
  CHECK(out[1024 + 4 * 32 + 4] == transform.value(1, d.image(0)[1024]));
}

TEST_CASE("augment: the loader applies each sample's drawn crop and flip, and the draws cover the range") {
  const ImageDataset d = toy_cifar(300);
  LoaderOptions options;
  options.batch_size = 64;
  options.seed = 3;
  options.num_workers = 2;
  Loader loader(d, options);
  const EpochData data = collect(loader, 2);
  std::set<int64_t> offsets_y, offsets_x;
  int64_t flips = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    const int64_t n = loader.order()[i];
    const CropFlip crop = loader.crop_flip_for(n);
    offsets_y.insert(crop.dy);
    offsets_x.insert(crop.dx);
    flips += crop.flip;
    // Spot-check a row through the image against the formula.
    for (int64_t x = 0; x < 32; ++x) {
      if (data.images[i * 3072 + 1024 + 16 * 32 + x] != expected_pixel(d, n, 1, 16, x, crop, 4)) {
        FAIL("sample " << n << " column " << x << " does not match its crop/flip");
      }
    }
  }
  CHECK(offsets_y.size() == 9);
  CHECK(offsets_x.size() == 9);
  CHECK(flips > 100);
  CHECK(flips < 200);
  // Augmentation off: every sample gets the identity crop.
  options.augment = false;
  Loader plain(d, options);
  plain.start_epoch(2);
  const CropFlip identity = plain.crop_flip_for(17);
  CHECK(identity.dy == 4);
  CHECK(identity.dx == 4);
  CHECK_FALSE(identity.flip);
}

TEST_CASE("loader: augmentation defaults follow the dataset, MNIST-family off unless asked") {
  TempDir dir;
  write_bytes(dir / "train-images-idx3-ubyte", idx_bytes({2, 28, 28}, pattern_images(2, 784)));
  write_bytes(dir / "train-labels-idx1-ubyte", idx_bytes({2}, {1, 2}));
  const ImageDataset mnist = load_dataset("mnist", true, dir.path.string());
  CHECK_FALSE(Loader(mnist).augmenting());
  LoaderOptions options = options_with(2, 0);
  options.augment = true;
  CHECK(Loader(mnist, options).augmenting());
  const ImageDataset cifar = toy_cifar(2);
  CHECK(Loader(cifar).augmenting());
  Loader one_channel(mnist, options);
  CHECK(one_channel.next()->images.shape() == Shape{2, 1, 28, 28});
}

TEST_CASE("loader: bad options are ValueErrors, abandoned epochs shut down cleanly") {
  const ImageDataset d = toy_cifar(40);
  CHECK(contains(error_text<ValueError>([&] { Loader(d, options_with(0, 1)); }),
                 "loader for toy-cifar: expected batch_size > 0, found 0"));
  CHECK(
      contains(error_text<ValueError>([&] { Loader(d, options_with(4, -1)); }), "expected num_workers >= 0"));
  ImageDataset broken = d;
  broken.labels[3] = 10;
  CHECK(contains(error_text<ValueError>([&] { Loader{broken}; }), "label 10 of sample 3 is out of range"));

  LoaderOptions options;
  options.batch_size = 4;
  options.num_workers = 3;
  options.prefetch_batches = 3;
  {
    Loader loader(d, options);
    loader.start_epoch(0);
    REQUIRE(loader.next().has_value());  // workers now block on full slots
    loader.start_epoch(1);               // abandons epoch 0
    CHECK(collect(loader, 1).labels.size() == 40);
    loader.start_epoch(2);
  }  // destroyed mid-epoch with workers waiting
  Loader restarted(d, options);
  restarted.start_epoch(1);
  Loader sync(d, options_with(4, 0));
  CHECK(collect(restarted, 1).images == collect(sync, 1).images);
}

TEST_CASE("loader bench: runs on a small synthetic set and reports a positive rate") {
  const LoaderBenchResult result = bench_augmented_cifar_loader(256, 64, 2, 1);
  CHECK(result.images == 256);
  CHECK(result.seconds > 0);
  CHECK(result.images_per_second > 0);
  CHECK(augmented_cifar_images_per_second(64, 32, 0, 1) > 0);
}
