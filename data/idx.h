// IDX files (MNIST, Fashion-MNIST, EMNIST), raw or gzip. The format: 2 zero bytes, an element type
// byte (0x08 = unsigned byte, the only one these datasets use), a dimension count byte, then one
// big-endian uint32 per dimension, then the elements in row-major order.
// Parsing works on bytes in memory so the file readers and the fuzzer share one code path.
#pragma once
#include "data/image_dataset.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace kindling::data {

// A parsed IDX array: its dimensions and a view of its elements inside the parsed buffer.
struct IdxView {
  std::vector<int64_t> dims;
  std::span<const uint8_t> values;  // exactly product(dims) bytes
};

// Requires nothing of `bytes`. Ensures values.size() == product(dims) == the bytes after the header.
// Throws FileError naming `name` for a short header, wrong magic or element type, a dimension count
// outside 1..4, or a declared size that differs from the data present (truncated or trailing bytes).
IdxView parse_idx(const std::string& name, std::span<const uint8_t> bytes);

// How an IDX image/label pair becomes an ImageDataset.
struct IdxLayout {
  int64_t rows = 28, cols = 28;  // expected image size; 0 accepts any
  int64_t num_classes = 10;
  int64_t first_label = 0;  // stored labels run first_label..first_label+num_classes-1
  bool transposed = false;  // EMNIST stores each image column-major: transpose on load
};

// Parses an images file ([count, rows, cols]) and a labels file ([count]) into a dataset with
// channels == 1, labels shifted to 0..num_classes-1 and images upright. Only the sample fields
// (shape, images, labels, num_classes) are filled; the caller adds the name and metadata.
// Throws FileError naming the file at fault: dimension counts, image size, count mismatch between
// the two files, empty files, labels out of range.
ImageDataset parse_idx_dataset(const std::string& images_name, std::span<const uint8_t> images_bytes,
                               const std::string& labels_name, std::span<const uint8_t> labels_bytes,
                               const IdxLayout& layout);

// Reads both files (raw or gzip) and parses them as above.
ImageDataset read_idx_dataset(const std::filesystem::path& images_file,
                              const std::filesystem::path& labels_file, const IdxLayout& layout);

}  // namespace kindling::data
