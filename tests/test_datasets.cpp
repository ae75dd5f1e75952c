// The dataset registry and what is done to a loaded dataset: a missing dataset's message, limit,
// subset and validation splits, channel statistics, and the real Fashion-MNIST when the Debian
// package is installed.
#include "data/datasets.h"
#include "tests/test_data_files.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

using namespace kindling;
using namespace kindling::data;
using namespace kindling::test;

TEST_CASE("registry: a missing dataset says where it looked and how to get it") {
  TempDir dir;
  const std::string text = error_text([&] { load_dataset("cifar10", true, dir.path.string()); });
  CHECK(contains(text, "cifar10 (train): cannot find data_batch_1.bin[.gz]"));
  CHECK(contains(text, dir.path.string()));
  CHECK(contains(text, (dir / "cifar-10-batches-bin").string()));
  CHECK(contains(text, "https://www.cs.toronto.edu/~kriz/cifar.html"));
  const std::string emnist = error_text([&] { load_dataset("emnist-digits", false, dir.path.string()); });
  CHECK(contains(emnist, "emnist-digits-test-images-idx3-ubyte"));
  CHECK(contains(emnist, "nist.gov"));
  const std::string fashion = error_text([&] { load_dataset("fashion-mnist", true, dir.path.string()); });
  CHECK(contains(fashion, "dataset-fashion-mnist"));
  CHECK(dataset_search_dirs(dataset_info("fashion-mnist"), "").front() == fs::path(kDebianFashionMnistDir));

  SUBCASE("a folder holding only some of the files is reported as such") {
    write_bytes(dir / "data_batch_1.bin", std::vector<uint8_t>(3073, 0));
    const std::string partial = error_text([&] { load_dataset("cifar10", true, dir.path.string()); });
    CHECK(contains(partial, "holds data_batch_1.bin but not data_batch_2.bin, data_batch_3.bin"));
  }
  SUBCASE("an unknown name lists the known ones") {
    const std::string unknown = error_text<ValueError>([] { load_dataset("cifar-11", true); });
    CHECK(contains(unknown, "unknown dataset 'cifar-11'"));
    CHECK(contains(unknown, "emnist-letters"));
    CHECK(contains(unknown, "cifar100-coarse"));
  }
  SUBCASE("a malformed file found by the registry names its path") {
    write_bytes(dir / "train-images-idx3-ubyte", {0, 0, 8});
    write_bytes(dir / "train-labels-idx1-ubyte", idx_bytes({1}, {0}));
    const std::string bad = error_text([&] { load_dataset("mnist", true, dir.path.string()); });
    CHECK(contains(bad, (dir / "train-images-idx3-ubyte").string()));
    CHECK(contains(bad, "truncated IDX header"));
  }
}

TEST_CASE("limit, subset and validation splits keep samples with their labels") {
  ImageDataset d;
  d.name = "toy";
  d.channels = 1, d.height = 1, d.width = 2, d.num_classes = 10;
  for (int i = 0; i < 10; ++i) {
    d.images.push_back(static_cast<uint8_t>(i));
    d.images.push_back(static_cast<uint8_t>(100 + i));
    d.labels.push_back(i);
  }
  ImageDataset first3 = limit(d, 3);
  CHECK(first3.labels == std::vector<int64_t>{0, 1, 2});
  CHECK(first3.images == std::vector<uint8_t>{0, 100, 1, 101, 2, 102});
  CHECK(limit(d, 50).size() == 10);
  const std::vector<int64_t> picks = {7, 2};
  CHECK(subset(d, picks).images == std::vector<uint8_t>{7, 107, 2, 102});
  CHECK(contains(error_text<ValueError>([&] { subset(d, std::vector<int64_t>{10}); }),
                 "expected sample indices in [0, 10), found 10"));

  auto [train, validation] = split_validation(d, 0.2);
  CHECK(train.labels == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(validation.labels == std::vector<int64_t>{8, 9});
  CHECK(validation.images == std::vector<uint8_t>{8, 108, 9, 109});

  auto seeded = split_validation(d, 0.3, 42);
  auto again = split_validation(d, 0.3, 42);
  CHECK(seeded.validation.labels == again.validation.labels);
  CHECK(seeded.validation.size() == 3);
  CHECK(seeded.train.size() == 7);
  std::vector<int64_t> all = seeded.train.labels;
  all.insert(all.end(), seeded.validation.labels.begin(), seeded.validation.labels.end());
  std::sort(all.begin(), all.end());
  CHECK(all == d.labels);  // disjoint and complete
  CHECK(std::is_sorted(seeded.validation.labels.begin(), seeded.validation.labels.end()));
  bool any_seed_differs = false;
  for (uint64_t seed = 0; seed < 5; ++seed)
    any_seed_differs |= split_validation(d, 0.3, seed).validation.labels != seeded.validation.labels;
  CHECK(any_seed_differs);

  CHECK(contains(error_text<ValueError>([&] { split_validation(d, 1.0); }),
                 "expected a fraction in (0, 1), found 1"));
  CHECK(contains(error_text<ValueError>([&] { split_validation(d, 0.01); }), "leaves 0 for validation"));
}

TEST_CASE("channel statistics match a hand computation") {
  ImageDataset d;
  d.channels = 2, d.height = 1, d.width = 2, d.num_classes = 1;
  d.images = {0, 255, 51, 51, 255, 255, 51, 51};  // two images
  d.labels = {0, 0};
  const ChannelStats stats = compute_channel_stats(d);
  // Channel 0: {0, 1, 1, 1} -> mean 0.75, std sqrt(0.1875). Channel 1: all 0.2.
  CHECK(stats.mean[0] == doctest::Approx(0.75));
  CHECK(stats.std[0] == doctest::Approx(std::sqrt(0.1875)));
  CHECK(stats.mean[1] == doctest::Approx(0.2));
  CHECK(stats.std[1] == doctest::Approx(0.0).epsilon(1e-6));
}

TEST_CASE("real Fashion-MNIST from the Debian package") {
  if (!fs::exists(fs::path(kDebianFashionMnistDir) / "train-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: " << kDebianFashionMnistDir << " is not installed (apt install dataset-fashion-mnist)");
    return;
  }
  ImageDataset train = load_dataset("fashion-mnist", true);
  ImageDataset test = load_dataset("fashion-mnist", false);
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  CHECK(train.height == 28);
  CHECK(train.width == 28);
  CHECK(train.images.size() == 60000u * 784u);
  CHECK(train.labels[0] == 9);
  std::vector<int64_t> per_class(10, 0);
  for (int64_t label : train.labels) ++per_class[label];
  CHECK(per_class == std::vector<int64_t>(10, 6000));
  // The registry's normalisation constants are those of this training set.
  const ChannelStats stats = compute_channel_stats(train);
  CHECK(stats.mean[0] == doctest::Approx(train.mean[0]).epsilon(1e-3));
  CHECK(stats.std[0] == doctest::Approx(train.std[0]).epsilon(1e-3));
}
