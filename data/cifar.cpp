// CIFAR-10/100 binary records: size and label checks, then a copy of the [C, H, W] planes.
#include "data/cifar.h"

#include "core/error.h"
#include "data/file_bytes.h"

#include <cstring>

namespace kindling::data {

namespace {

const char* format_name(CifarFormat format) {
  return format == CifarFormat::cifar10 ? "CIFAR-10" : "CIFAR-100";
}

}  // namespace

int64_t cifar_record_bytes(CifarFormat format) {
  return (format == CifarFormat::cifar10 ? 1 : 2) + kCifarImageBytes;
}

int64_t cifar_num_classes(CifarFormat format) {
  switch (format) {
    case CifarFormat::cifar10:
      return 10;
    case CifarFormat::cifar100_fine:
      return 100;
    case CifarFormat::cifar100_coarse:
      return 20;
  }
  return 0;
}

void parse_cifar_into(const std::string& name, std::span<const uint8_t> bytes, CifarFormat format,
                      ImageDataset& dataset) {
  const int64_t record_bytes = cifar_record_bytes(format);
  const int64_t size = static_cast<int64_t>(bytes.size());
  KINDLING_CHECK(size > 0, FileError, "{}: file is empty: expected {} records of {} bytes", name,
                 format_name(format), record_bytes);
  KINDLING_CHECK(size % record_bytes == 0, FileError,
                 "{}: size mismatch: expected a whole number of {}-byte {} records, found {} bytes "
                 "({} records and {} bytes left over; truncated or not a {} binary file)",
                 name, record_bytes, format_name(format), size, size / record_bytes, size % record_bytes,
                 format_name(format));
  const int64_t count = size / record_bytes;
  // Both CIFAR-100 labels are checked whichever one is kept, so a file that is wrong in either is
  // rejected the same way for both tasks.
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* record = bytes.data() + i * record_bytes;
    if (format == CifarFormat::cifar10) {
      KINDLING_CHECK(record[0] < 10, FileError,
                     "{}: record {} has label {}: expected 0..9 (a CIFAR-10 binary file)", name, i,
                     record[0]);
    } else {
      KINDLING_CHECK(record[0] < 20, FileError,
                     "{}: record {} has coarse label {}: expected 0..19 (a CIFAR-100 binary file)", name, i,
                     record[0]);
      KINDLING_CHECK(record[1] < 100, FileError,
                     "{}: record {} has fine label {}: expected 0..99 (a CIFAR-100 binary file)", name, i,
                     record[1]);
    }
  }
  KINDLING_CHECK(
      dataset.size() == 0 || (dataset.channels == 3 && dataset.height == 32 && dataset.width == 32),
      ValueError, "{}: cannot append CIFAR images to a dataset of {}x{}x{} images", name, dataset.channels,
      dataset.height, dataset.width);
  dataset.channels = 3;
  dataset.height = 32;
  dataset.width = 32;
  dataset.num_classes = cifar_num_classes(format);
  const size_t first = dataset.images.size();
  dataset.images.resize(first + count * kCifarImageBytes);
  dataset.labels.reserve(dataset.labels.size() + count);
  const int64_t label_byte = format == CifarFormat::cifar100_fine ? 1 : 0;
  const int64_t image_offset = record_bytes - kCifarImageBytes;
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* record = bytes.data() + i * record_bytes;
    dataset.labels.push_back(record[label_byte]);
    std::memcpy(dataset.images.data() + first + i * kCifarImageBytes, record + image_offset,
                kCifarImageBytes);
  }
}

ImageDataset read_cifar_dataset(const std::vector<std::filesystem::path>& files, CifarFormat format) {
  ImageDataset dataset;
  for (const auto& file : files) parse_cifar_into(file.string(), read_file_bytes(file), format, dataset);
  return dataset;
}

}  // namespace kindling::data
