// IDX parsing and the MNIST-family image/label pairing, with every field checked before use.
#include "data/idx.h"

#include "core/error.h"
#include "data/file_bytes.h"

#include <algorithm>

namespace kindling::data {

namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
constexpr int64_t kMaxDims = 4;

uint32_t read_big_endian_u32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string text;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) text += 'x';
    text += std::to_string(dims[i]);
  }
  return text;
}

}  // namespace

IdxView parse_idx(const std::string& name, std::span<const uint8_t> bytes) {
  KINDLING_CHECK(!bytes.empty(), FileError, "{}: file is empty: expected an IDX header of at least 4 bytes",
                 name);
  KINDLING_CHECK(bytes.size() >= 4, FileError,
                 "{}: truncated IDX header: expected at least 4 bytes, found {}", name, bytes.size());
  KINDLING_CHECK(bytes[0] == 0 && bytes[1] == 0, FileError,
                 "{}: not an IDX file: expected magic 00 00 08 <dims>, found {:02x} {:02x} {:02x} {:02x}",
                 name, bytes[0], bytes[1], bytes[2], bytes[3]);
  KINDLING_CHECK(bytes[2] == kUnsignedByteType, FileError,
                 "{}: unsupported IDX element type: expected 0x08 (unsigned byte), found 0x{:02x}", name,
                 bytes[2]);
  const int64_t num_dims = bytes[3];
  KINDLING_CHECK(num_dims >= 1 && num_dims <= kMaxDims, FileError,
                 "{}: bad IDX header: expected 1 to {} dimensions, found {}", name, kMaxDims, num_dims);
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(num_dims);
  KINDLING_CHECK(bytes.size() >= header_bytes, FileError,
                 "{}: truncated IDX header: {} dimensions need {} header bytes, found {}", name, num_dims,
                 header_bytes, bytes.size());
  IdxView view;
  const uint64_t data_bytes = bytes.size() - header_bytes;
  for (int64_t d = 0; d < num_dims; ++d) view.dims.push_back(read_big_endian_u32(bytes.data() + 4 + 4 * d));
  // The product is compared with the bytes present as it grows, so it never overflows: each factor
  // is < 2^32 and the running product is <= data_bytes (< 2^63) before each multiplication. A zero
  // dimension makes the whole product zero, so it is looked for first.
  const bool has_zero_dim = std::find(view.dims.begin(), view.dims.end(), 0) != view.dims.end();
  uint64_t declared = has_zero_dim ? 0 : 1;
  bool exceeds = false;
  for (int64_t d = 0; d < num_dims && !has_zero_dim && !exceeds; ++d) {
    declared *= static_cast<uint64_t>(view.dims[d]);
    exceeds = declared > data_bytes;
  }
  KINDLING_CHECK(!exceeds, FileError,
                 "{}: truncated IDX data: the header declares {} elements, more than the {} data bytes found",
                 name, dims_str(view.dims), data_bytes);
  KINDLING_CHECK(
      declared == data_bytes, FileError,
      "{}: IDX size mismatch: the header declares {} = {} data bytes, found {} ({} trailing bytes)", name,
      dims_str(view.dims), declared, data_bytes, data_bytes - declared);
  view.values = bytes.subspan(header_bytes);
  return view;
}

ImageDataset parse_idx_dataset(const std::string& images_name, std::span<const uint8_t> images_bytes,
                               const std::string& labels_name, std::span<const uint8_t> labels_bytes,
                               const IdxLayout& layout) {
  const IdxView images = parse_idx(images_name, images_bytes);
  const IdxView labels = parse_idx(labels_name, labels_bytes);
  KINDLING_CHECK(images.dims.size() == 3, FileError,
                 "{}: expected an IDX image file with 3 dimensions (count, rows, cols), found {} dimensions",
                 images_name, images.dims.size());
  KINDLING_CHECK(labels.dims.size() == 1, FileError,
                 "{}: expected an IDX label file with 1 dimension (count), found {} dimensions", labels_name,
                 labels.dims.size());
  const int64_t count = images.dims[0], stored_rows = images.dims[1], stored_cols = images.dims[2];
  // A transposed file stores each upright [H, W] image as its [W, H] transpose.
  const int64_t height = layout.transposed ? stored_cols : stored_rows;
  const int64_t width = layout.transposed ? stored_rows : stored_cols;
  KINDLING_CHECK(count > 0, FileError, "{}: expected at least one image, found 0", images_name);
  KINDLING_CHECK(height > 0 && width > 0, FileError, "{}: expected non-empty images, found {}x{}",
                 images_name, height, width);
  KINDLING_CHECK((layout.rows == 0 || height == layout.rows) && (layout.cols == 0 || width == layout.cols),
                 FileError, "{}: expected images of {}x{}, found {}x{}", images_name, layout.rows,
                 layout.cols, height, width);
  KINDLING_CHECK(labels.dims[0] == count, FileError,
                 "{} holds {} labels but {} holds {} images: expected equal counts", labels_name,
                 labels.dims[0], images_name, count);

  ImageDataset dataset;
  dataset.channels = 1;
  dataset.height = height;
  dataset.width = width;
  dataset.num_classes = layout.num_classes;
  dataset.labels.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t stored = labels.values[i];
    KINDLING_CHECK(stored >= layout.first_label && stored < layout.first_label + layout.num_classes,
                   FileError, "{}: label {} at index {} is out of range: expected {}..{}", labels_name,
                   stored, i, layout.first_label, layout.first_label + layout.num_classes - 1);
    dataset.labels[i] = stored - layout.first_label;
  }
  if (!layout.transposed) {
    dataset.images.assign(images.values.begin(), images.values.end());
    return dataset;
  }
  // upright[y, x] = stored[x, y], the stored matrix having `width` rows of `height` bytes.
  const int64_t image_bytes = height * width;
  dataset.images.resize(images.values.size());
  for (int64_t n = 0; n < count; ++n) {
    const uint8_t* stored = images.values.data() + n * image_bytes;
    uint8_t* upright = dataset.images.data() + n * image_bytes;
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) upright[y * width + x] = stored[x * height + y];
  }
  return dataset;
}

ImageDataset read_idx_dataset(const std::filesystem::path& images_file,
                              const std::filesystem::path& labels_file, const IdxLayout& layout) {
  const std::vector<uint8_t> images = read_file_bytes(images_file);
  const std::vector<uint8_t> labels = read_file_bytes(labels_file);
  return parse_idx_dataset(images_file.string(), images, labels_file.string(), labels, layout);
}

}  // namespace kindling::data
