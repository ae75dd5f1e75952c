// Readers and the dataset registry on files the tests write in the published formats, every
// bad-file case with its message, and the real Fashion-MNIST when the Debian package is installed.
#include "data/cifar.h"
#include "data/datasets.h"
#include "data/file_bytes.h"
#include "data/idx.h"
#include "test_data_files.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace kindling;
using namespace kindling::data;
using namespace kindling::test;

namespace {

// Writes an MNIST-style pair <prefix><split>-images-idx3-ubyte / -labels-idx1-ubyte.
void write_idx_pair(const fs::path& dir, const std::string& stem_images, const std::string& stem_labels,
                    const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels, int64_t rows,
                    int64_t cols, bool gzip) {
  const auto count = static_cast<uint32_t>(labels.size());
  auto image_file = idx_bytes({count, uint32_t(rows), uint32_t(cols)}, images);
  auto label_file = idx_bytes({count}, labels);
  if (gzip) {
    write_gzip(dir / (stem_images + ".gz"), image_file);
    write_gzip(dir / (stem_labels + ".gz"), label_file);
  } else {
    write_bytes(dir / stem_images, image_file);
    write_bytes(dir / stem_labels, label_file);
  }
}

void write_mnist_split(const fs::path& dir, const std::string& split, const std::vector<uint8_t>& images,
                       const std::vector<uint8_t>& labels, bool gzip) {
  write_idx_pair(dir, split + "-images-idx3-ubyte", split + "-labels-idx1-ubyte", images, labels, 28, 28, gzip);
}

const IdxLayout kMnistLayout{};

std::string parse_pair_error(const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels,
                             const IdxLayout& layout = kMnistLayout) {
  return error_text([&] { parse_idx_dataset("imgs.idx", images, "lbls.idx", labels, layout); });
}

}  // namespace

TEST_CASE("mnist: raw IDX files load with pixels, labels and metadata intact") {
  TempDir dir;
  const auto images = pattern_images(5, 784);
  const std::vector<uint8_t> labels = {3, 0, 9, 1, 7};
  write_mnist_split(dir.path, "train", images, labels, false);
  ImageDataset d = load_dataset("mnist", true, dir.path.string());
  CHECK(d.name == "mnist");
  CHECK(d.train);
  CHECK(d.size() == 5);
  CHECK(d.channels == 1);
  CHECK(d.height == 28);
  CHECK(d.width == 28);
  CHECK(d.num_classes == 10);
  CHECK(d.images == images);
  CHECK(d.labels == std::vector<int64_t>{3, 0, 9, 1, 7});
  CHECK(d.class_names.size() == 10);
  CHECK(d.class_names[7] == "7");
  CHECK(d.mean == std::vector<float>{0.1307f});
  CHECK(d.std == std::vector<float>{0.3081f});
  CHECK_FALSE(d.augment_by_default);
}

TEST_CASE("fashion-mnist: gzip files give the same dataset, test split uses the t10k names") {
  TempDir dir;
  const auto images = pattern_images(4, 784);
  const std::vector<uint8_t> labels = {9, 0, 0, 3};
  write_mnist_split(dir.path, "t10k", images, labels, true);
  ImageDataset d = load_dataset("fashion-mnist", false, dir.path.string());
  CHECK_FALSE(d.train);
  CHECK(d.images == images);
  CHECK(d.labels == std::vector<int64_t>{9, 0, 0, 3});
  CHECK(d.class_names.front() == "T-shirt/top");
  CHECK(d.class_names.back() == "Ankle boot");
  // The training split is a different file: absent here.
  CHECK(contains(error_text([&] { load_dataset("fashion-mnist", true, dir.path.string()); }),
                 "train-images-idx3-ubyte"));
}

TEST_CASE("gzip is detected by its magic bytes, not by the file name") {
  TempDir dir;
  const auto raw = idx_bytes({3}, {1, 2, 3});
  write_bytes(dir / "plain.gz", raw);                 // raw bytes behind a .gz name
  write_bytes(dir / "packed", gzip_bytes(raw));       // gzip behind a plain name
  CHECK(read_file_bytes(dir / "plain.gz") == raw);
  CHECK(read_file_bytes(dir / "packed") == raw);
  CHECK_FALSE(is_gzip(raw));
  CHECK(is_gzip(gzip_bytes(raw)));
}

TEST_CASE("gzip: concatenated members decompress to the concatenation, empty content is allowed") {
  const std::vector<uint8_t> first = {1, 2, 3}, second = {4, 5};
  auto both = gzip_bytes(first);
  const auto tail = gzip_bytes(second);
  both.insert(both.end(), tail.begin(), tail.end());
  CHECK(gunzip("two.gz", both) == std::vector<uint8_t>{1, 2, 3, 4, 5});
  CHECK(gunzip("empty.gz", gzip_bytes({})).empty());
  // A large, highly compressible payload exercises output growth.
  std::vector<uint8_t> big(5'000'000);
  std::iota(big.begin(), big.end(), uint8_t{0});
  CHECK(gunzip("big.gz", gzip_bytes(big)) == big);
}

TEST_CASE("gzip: corrupt, truncated and oversized streams are FileErrors naming the file") {
  std::vector<uint8_t> payload(20000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  const auto gz = gzip_bytes(payload);
  REQUIRE(gz.size() > 100);
  SUBCASE("truncated at several points") {
    for (size_t keep : {size_t(2), size_t(10), gz.size() / 2, gz.size() - 8, gz.size() - 1}) {
      CAPTURE(keep);
      const std::vector<uint8_t> cut(gz.begin(), gz.begin() + keep);
      const std::string text = error_text([&] { gunzip("cut.gz", cut); });
      CHECK(contains(text, "cut.gz"));
      CHECK(contains(text, "truncated gzip data"));
    }
  }
  SUBCASE("a flipped byte inside the deflate data") {
    auto bad = gz;
    bad[gz.size() / 2] ^= 0xff;
    const std::string text = error_text([&] { gunzip("flip.gz", bad); });
    CHECK(contains(text, "flip.gz"));
    CHECK(contains(text, "gzip data"));
  }
  SUBCASE("a wrong CRC in the trailer") {
    auto bad = gz;
    bad[gz.size() - 8] ^= 0x01;
    const std::string text = error_text([&] { gunzip("crc.gz", bad); });
    CHECK(contains(text, "crc.gz"));
    CHECK(contains(text, "corrupt gzip data"));
    CHECK(contains(text, "incorrect data check"));
  }
  SUBCASE("a bad header (unknown compression method)") {
    auto bad = gz;
    bad[2] = 0x07;
    CHECK(contains(error_text([&] { gunzip("hdr.gz", bad); }), "corrupt gzip data"));
  }
  SUBCASE("trailing garbage after the stream") {
    auto bad = gz;
    bad.push_back(0x00);
    bad.push_back(0x42);
    const std::string text = error_text([&] { gunzip("tail.gz", bad); });
    CHECK(contains(text, "tail.gz"));
    CHECK(contains(text, "2 trailing bytes"));
  }
  SUBCASE("more output than the cap allows") {
    const std::string text = error_text([&] { gunzip("bomb.gz", gz, 1000); });
    CHECK(contains(text, "bomb.gz"));
    CHECK(contains(text, "more than the 1000 bytes"));
  }
  SUBCASE("a gzip IDX file on disk that is truncated") {
    TempDir dir;
    write_bytes(dir / "train-images-idx3-ubyte.gz", std::vector<uint8_t>(gz.begin(), gz.begin() + 50));
    const std::string text = error_text([&] { read_file_bytes(dir / "train-images-idx3-ubyte.gz"); });
    CHECK(contains(text, "train-images-idx3-ubyte.gz"));
    CHECK(contains(text, "truncated"));
  }
}

TEST_CASE("idx: the header is parsed big-endian and the data is viewed in place") {
  const auto bytes = idx_bytes({2, 3, 0x0102}, std::vector<uint8_t>(2 * 3 * 0x0102, 5));
  const IdxView view = parse_idx("a.idx", bytes);
  CHECK(view.dims == std::vector<int64_t>{2, 3, 258});
  CHECK(view.values.size() == 2 * 3 * 258);
  CHECK(view.values.data() == bytes.data() + 16);
}

TEST_CASE("idx: malformed headers and sizes are rejected with expected and found") {
  const auto good = idx_bytes({2, 28, 28}, pattern_images(2, 784));
  auto text_of = [](const std::vector<uint8_t>& bytes) {
    return error_text([&] { parse_idx("bad.idx", bytes); });
  };
  CHECK(contains(text_of({}), "bad.idx: file is empty"));
  SUBCASE("truncated at several points") {
    CHECK(contains(text_of({0, 0}), "truncated IDX header: expected at least 4 bytes, found 2"));
    CHECK(contains(text_of(std::vector<uint8_t>(good.begin(), good.begin() + 9)),
                   "truncated IDX header: 3 dimensions need 16 header bytes, found 9"));
    CHECK(contains(text_of(std::vector<uint8_t>(good.begin(), good.begin() + 16)),
                   "truncated IDX data: the header declares 2x28x28 elements, more than the 0 data bytes"));
    CHECK(contains(text_of(std::vector<uint8_t>(good.begin(), good.end() - 1)),
                   "more than the 1567 data bytes found"));
  }
  SUBCASE("wrong magic") {
    auto bad = good;
    bad[0] = 0x1a;
    CHECK(contains(text_of(bad), "not an IDX file: expected magic 00 00 08 <dims>, found 1a 00 08 03"));
  }
  SUBCASE("wrong element type") {
    auto bad = good;
    bad[2] = 0x0d;
    CHECK(contains(text_of(bad), "expected 0x08 (unsigned byte), found 0x0d"));
  }
  SUBCASE("dimension count out of range") {
    CHECK(contains(text_of({0, 0, 8, 0}), "expected 1 to 4 dimensions, found 0"));
    CHECK(contains(text_of({0, 0, 8, 9, 0, 0}), "expected 1 to 4 dimensions, found 9"));
  }
  SUBCASE("trailing bytes") {
    auto bad = good;
    bad.push_back(0);
    CHECK(contains(text_of(bad), "declares 2x28x28 = 1568 data bytes, found 1569 (1 trailing bytes)"));
  }
  SUBCASE("a huge declared count is never allocated") {
    const auto bad = idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {1, 2, 3});
    CHECK(contains(text_of(bad), "more than the 3 data bytes found"));
  }
}

TEST_CASE("idx pair: count mismatch, wrong shapes, empty sets and labels out of range") {
  const auto images = idx_bytes({3, 28, 28}, pattern_images(3, 784));
  const auto labels = idx_bytes({3}, {0, 1, 2});
  CHECK(parse_idx_dataset("i", images, "l", labels, kMnistLayout).size() == 3);
  CHECK(contains(parse_pair_error(images, idx_bytes({2}, {0, 1})),
                 "lbls.idx holds 2 labels but imgs.idx holds 3 images: expected equal counts"));
  CHECK(contains(parse_pair_error(images, idx_bytes({3}, {0, 10, 2})),
                 "lbls.idx: label 10 at index 1 is out of range: expected 0..9"));
  CHECK(contains(parse_pair_error(idx_bytes({3, 784}, pattern_images(3, 784)), labels),
                 "imgs.idx: expected an IDX image file with 3 dimensions (count, rows, cols), found 2"));
  CHECK(contains(parse_pair_error(images, idx_bytes({3, 1}, {0, 1, 2})),
                 "lbls.idx: expected an IDX label file with 1 dimension (count), found 2"));
  CHECK(contains(parse_pair_error(idx_bytes({3, 32, 28}, pattern_images(3, 32 * 28)), labels),
                 "imgs.idx: expected images of 28x28, found 32x28"));
  CHECK(contains(parse_pair_error(idx_bytes({0, 28, 28}, {}), idx_bytes({0}, {})),
                 "imgs.idx: expected at least one image, found 0"));
  CHECK(contains(parse_pair_error(idx_bytes({3, 0, 28}, {}), labels), "expected non-empty images, found 0x28"));
  // The images file is checked before the labels file.
  CHECK(contains(parse_pair_error({}, labels), "imgs.idx: file is empty"));
}

TEST_CASE("emnist: images are transposed upright on load") {
  // An upright asymmetric "L": a vertical bar in column 2 (rows 3..20) and a foot on row 20.
  std::vector<uint8_t> upright(784, 0);
  for (int y = 3; y <= 20; ++y) upright[y * 28 + 2] = 255;
  for (int x = 2; x <= 15; ++x) upright[20 * 28 + x] = 200;
  upright[0 * 28 + 27] = 17;  // top-right corner marker
  std::vector<uint8_t> stored(784);
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) stored[x * 28 + y] = upright[y * 28 + x];
  REQUIRE(stored != upright);
  TempDir dir;
  write_idx_pair(dir.path, "emnist-balanced-train-images-idx3-ubyte", "emnist-balanced-train-labels-idx1-ubyte",
                 stored, {46}, 28, 28, true);
  ImageDataset d = load_dataset("emnist-balanced", true, dir.path.string());
  CHECK(d.images == upright);
  CHECK(d.image(0)[27] == 17);
  CHECK(d.labels == std::vector<int64_t>{46});
  CHECK(d.num_classes == 47);
  CHECK(d.class_names[46] == "t");

  SUBCASE("a non-square transposed image gets the upright shape") {
    // Stored [W=3 rows, H=2 cols]: stored[x][y] = upright[y][x] with upright = {{1,2,3},{4,5,6}}.
    const auto images = idx_bytes({1, 3, 2}, {1, 4, 2, 5, 3, 6});
    IdxLayout layout{.rows = 0, .cols = 0, .num_classes = 10, .first_label = 0, .transposed = true};
    ImageDataset nonsquare = parse_idx_dataset("i", images, "l", idx_bytes({1}, {0}), layout);
    CHECK(nonsquare.height == 2);
    CHECK(nonsquare.width == 3);
    CHECK(nonsquare.images == std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
  }
}

TEST_CASE("emnist letters: stored labels 1..26 become 0..25, 0 and 27 are rejected") {
  TempDir dir;
  const auto images = pattern_images(3, 784);
  write_idx_pair(dir.path, "emnist-letters-test-images-idx3-ubyte", "emnist-letters-test-labels-idx1-ubyte",
                 images, {1, 26, 13}, 28, 28, false);
  ImageDataset d = load_dataset("emnist-letters", false, dir.path.string());
  CHECK(d.num_classes == 26);
  CHECK(d.labels == std::vector<int64_t>{0, 25, 12});
  CHECK(d.class_names[0] == "A");
  CHECK(d.class_names[25] == "Z");
  const IdxLayout letters = dataset_info("emnist-letters").idx_layout;
  const auto image_file = idx_bytes({1, 28, 28}, pattern_images(1, 784));
  CHECK(contains(parse_pair_error(image_file, idx_bytes({1}, {0}), letters),
                 "label 0 at index 0 is out of range: expected 1..26"));
  CHECK(contains(parse_pair_error(image_file, idx_bytes({1}, {27}), letters),
                 "label 27 at index 0 is out of range: expected 1..26"));
}

TEST_CASE("emnist: every split loads from its published file names with its class count") {
  const std::vector<std::pair<std::string, int64_t>> splits = {
      {"byclass", 62}, {"bymerge", 47}, {"balanced", 47}, {"letters", 26}, {"digits", 10}, {"mnist", 10}};
  TempDir dir;
  for (const auto& [split, classes] : splits) {
    CAPTURE(split);
    const uint8_t last = static_cast<uint8_t>(split == "letters" ? classes : classes - 1);
    for (const std::string part : {"train", "test"}) {
      write_idx_pair(dir / "gzip", "emnist-" + split + "-" + part + "-images-idx3-ubyte",
                     "emnist-" + split + "-" + part + "-labels-idx1-ubyte", pattern_images(2, 784),
                     {last, static_cast<uint8_t>(split == "letters" ? 1 : 0)}, 28, 28, true);
      // The archive's gzip/ folder is found under the data dir.
      ImageDataset d = load_dataset("emnist-" + split, part == "train", dir.path.string());
      CHECK(d.num_classes == classes);
      CHECK(static_cast<int64_t>(d.class_names.size()) == classes);
      CHECK(d.labels == std::vector<int64_t>{classes - 1, 0});
    }
  }
}

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
    if (b == 3) write_gzip(folder / "data_batch_3.bin.gz", file);
    else write_bytes(folder / ("data_batch_" + std::to_string(b) + ".bin"), file);
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
  for (int i = 0; i < 3; ++i) append_cifar_record(file, {labels[i].first, labels[i].second}, images.data() + i * 3072);
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
  CHECK(contains(text_of({}, CifarFormat::cifar10), "batch.bin: file is empty: expected CIFAR-10 records of 3073 bytes"));
  for (size_t keep : {size_t(1), size_t(3072), size_t(3074), two.size() - 1}) {
    CAPTURE(keep);
    const std::string text = text_of(std::vector<uint8_t>(two.begin(), two.begin() + keep), CifarFormat::cifar10);
    CHECK(contains(text, "batch.bin: size mismatch: expected a whole number of 3073-byte CIFAR-10 records"));
    CHECK(contains(text, fmt::format("found {} bytes", keep)));
  }
  auto bad_label = two;
  bad_label[3073] = 10;
  CHECK(contains(text_of(bad_label, CifarFormat::cifar10), "record 1 has label 10: expected 0..9"));
  std::vector<uint8_t> hundred;
  append_cifar_record(hundred, {20, 5}, image.data());
  CHECK(contains(text_of(hundred, CifarFormat::cifar100_fine), "record 0 has coarse label 20: expected 0..19"));
  hundred[0] = 19;
  hundred[1] = 100;
  CHECK(contains(text_of(hundred, CifarFormat::cifar100_coarse), "record 0 has fine label 100: expected 0..99"));
  // A CIFAR-10 file read as CIFAR-100 does not divide into 3074-byte records.
  CHECK(contains(text_of(two, CifarFormat::cifar100_fine), "3074-byte CIFAR-100 records"));
  CHECK(sink.size() == 0);  // nothing was appended by the failed parses
}

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
  CHECK(contains(error_text<ValueError>([&] { subset(d, std::vector<int64_t>{10}); }), "expected sample indices in [0, 10), found 10"));

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
  CHECK(all == d.labels);   // disjoint and complete
  CHECK(std::is_sorted(seeded.validation.labels.begin(), seeded.validation.labels.end()));
  bool any_seed_differs = false;
  for (uint64_t seed = 0; seed < 5; ++seed)
    any_seed_differs |= split_validation(d, 0.3, seed).validation.labels != seeded.validation.labels;
  CHECK(any_seed_differs);

  CHECK(contains(error_text<ValueError>([&] { split_validation(d, 1.0); }), "expected a fraction in (0, 1), found 1"));
  CHECK(contains(error_text<ValueError>([&] { split_validation(d, 0.01); }), "leaves 0 for validation"));
}

TEST_CASE("channel statistics match a hand computation") {
  ImageDataset d;
  d.channels = 2, d.height = 1, d.width = 2, d.num_classes = 1;
  d.images = {0, 255, 51, 51, 255, 255, 51, 51};   // two images
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
