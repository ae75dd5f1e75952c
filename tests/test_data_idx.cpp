// The IDX readers (MNIST, Fashion-MNIST, EMNIST) on files the tests write in the published format:
// pixels, labels and metadata, the big-endian header, every malformed header and pair with its
// message, EMNIST's transposed images and letter labels.
#include "data/datasets.h"
#include "data/idx.h"
#include "tests/test_data_files.h"

#include <doctest/doctest.h>

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
  write_idx_pair(dir, split + "-images-idx3-ubyte", split + "-labels-idx1-ubyte", images, labels, 28, 28,
                 gzip);
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
  CHECK(
      contains(parse_pair_error(idx_bytes({3, 0, 28}, {}), labels), "expected non-empty images, found 0x28"));
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
  write_idx_pair(dir.path, "emnist-balanced-train-images-idx3-ubyte",
                 "emnist-balanced-train-labels-idx1-ubyte", stored, {46}, 28, 28, true);
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
