// The CIFAR readers on files the tests write in the published binary format: CIFAR-10's batches in
// order, CIFAR-100's fine and coarse labels, and bad files reported with their name.
#include "data/cifar.h"
#include "data/datasets.h"
#include "tests/test_data_files.h"

#include <doctest/doctest.h>

using namespace kindling;
using namespace kindling::data;
using namespace kindling::test;

TEST_CASE("cifar10: five training batches in order, the test batch, CHW planes kept") {
  TempDir dir;
  const fs::path folder = dir / "cifar-10-batches-bin";
  const auto images = pattern_images(10, 3072);
  for (int b = 1; b <= 5; ++b) {
    std::vector<uint8_t> file;
    for (int i = 0; i < 2; ++i) {
      const int n = (b - 1) * 2 + i;
      append_cifar_record(file, {static_cast<uint8_t>(n % 10)}, images.data() + n * 3072);
    }
    // Batch 3 gzip-compressed: the same reader handles it.
    if (b == 3)
      write_gzip(folder / "data_batch_3.bin.gz", file);
    else
      write_bytes(folder / ("data_batch_" + std::to_string(b) + ".bin"), file);
  }
  std::vector<uint8_t> test_file;
  append_cifar_record(test_file, {4}, images.data());
  write_bytes(folder / "test_batch.bin", test_file);

  ImageDataset train = load_dataset("cifar10", true, dir.path.string());
  CHECK(train.size() == 10);
  CHECK(train.channels == 3);
  CHECK(train.height == 32);
  CHECK(train.width == 32);
  CHECK(train.images == images);
  CHECK(train.labels == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(train.class_names[0] == "airplane");
  CHECK(train.class_names[9] == "truck");
  CHECK(train.augment_by_default);
  CHECK(train.mean.size() == 3);
  ImageDataset test = load_dataset("cifar10", false, folder.string());
  CHECK(test.size() == 1);
  CHECK(test.labels == std::vector<int64_t>{4});
  // The red plane comes first: byte 1024 of the image is the first green pixel.
  CHECK(test.image(0)[1024] == images[1024]);
}

TEST_CASE("cifar100: fine labels by default, coarse labels on request") {
  TempDir dir;
  const auto images = pattern_images(3, 3072);
  std::vector<uint8_t> file;
  const std::vector<std::pair<uint8_t, uint8_t>> labels = {{4, 30}, {19, 99}, {0, 0}};  // (coarse, fine)
  for (int i = 0; i < 3; ++i)
    append_cifar_record(file, {labels[i].first, labels[i].second}, images.data() + i * 3072);
  write_bytes(dir / "cifar-100-binary" / "train.bin", file);
  ImageDataset fine = load_dataset("cifar100", true, dir.path.string());
  ImageDataset coarse = load_dataset("cifar100-coarse", true, dir.path.string());
  CHECK(fine.num_classes == 100);
  CHECK(fine.labels == std::vector<int64_t>{30, 99, 0});
  CHECK(fine.class_names[30] == "dolphin");
  CHECK(fine.class_names.size() == 100);
  CHECK(coarse.num_classes == 20);
  CHECK(coarse.labels == std::vector<int64_t>{4, 19, 0});
  CHECK(coarse.class_names[4] == "fruit_and_vegetables");
  CHECK(fine.images == images);
  CHECK(coarse.images == images);
}

TEST_CASE("cifar: empty, truncated and out-of-range files are FileErrors naming the file") {
  const auto image = pattern_images(1, 3072);
  std::vector<uint8_t> two;
  append_cifar_record(two, {1}, image.data());
  append_cifar_record(two, {2}, image.data());
  ImageDataset sink;
  auto text_of = [&](const std::vector<uint8_t>& bytes, CifarFormat format) {
    return error_text([&] { parse_cifar_into("batch.bin", bytes, format, sink); });
  };
  CHECK(contains(text_of({}, CifarFormat::cifar10),
                 "batch.bin: file is empty: expected CIFAR-10 records of 3073 bytes"));
  for (size_t keep : {size_t(1), size_t(3072), size_t(3074), two.size() - 1}) {
    CAPTURE(keep);
    const std::string text =
        text_of(std::vector<uint8_t>(two.begin(), two.begin() + keep), CifarFormat::cifar10);
    CHECK(contains(text, "batch.bin: size mismatch: expected a whole number of 3073-byte CIFAR-10 records"));
    CHECK(contains(text, fmt::format("found {} bytes", keep)));
  }
  auto bad_label = two;
  bad_label[3073] = 10;
  CHECK(contains(text_of(bad_label, CifarFormat::cifar10), "record 1 has label 10: expected 0..9"));
  std::vector<uint8_t> hundred;
  append_cifar_record(hundred, {20, 5}, image.data());
  CHECK(
      contains(text_of(hundred, CifarFormat::cifar100_fine), "record 0 has coarse label 20: expected 0..19"));
  hundred[0] = 19;
  hundred[1] = 100;
  CHECK(contains(text_of(hundred, CifarFormat::cifar100_coarse),
                 "record 0 has fine label 100: expected 0..99"));
  // A CIFAR-10 file read as CIFAR-100 does not divide into 3074-byte records.
  CHECK(contains(text_of(two, CifarFormat::cifar100_fine), "3074-byte CIFAR-100 records"));
  CHECK(sink.size() == 0);  // nothing was appended by the failed parses
}
