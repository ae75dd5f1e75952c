// CIFAR-10 and CIFAR-100 binary files. Each file is a plain sequence of fixed-size records with no
// header: CIFAR-10 `data_batch_1.bin`..`data_batch_5.bin` and `test_batch.bin` hold records of
// <label byte> + 3072 image bytes; CIFAR-100 `train.bin` and `test.bin` hold <coarse label byte>
// <fine label byte> + 3072 image bytes. The image bytes are the red, green and blue 32x32 planes,
// i.e. already [C, H, W].
#pragma once
#include "data/image_dataset.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace kindling::data {

enum class CifarFormat {
  cifar10,          // 10 classes
  cifar100_fine,    // 100 fine classes (the usual CIFAR-100 task)
  cifar100_coarse,  // 20 superclasses
};

constexpr int64_t kCifarImageBytes = 3 * 32 * 32;
int64_t cifar_record_bytes(CifarFormat format);  // 3073 or 3074
int64_t cifar_num_classes(CifarFormat format);   // 10, 100 or 20

// Appends every record of one file to `dataset` (which must be empty or already hold 3x32x32
// images). Throws FileError naming `name` when the file is empty, its size is not a whole number of
// records, or a label (either label, for CIFAR-100) is out of range; `dataset` is unchanged then.
void parse_cifar_into(const std::string& name, std::span<const uint8_t> bytes, CifarFormat format,
                      ImageDataset& dataset);

// Reads (raw or gzip) and parses the files in order into one dataset's sample fields.
ImageDataset read_cifar_dataset(const std::vector<std::filesystem::path>& files, CifarFormat format);

}  // namespace kindling::data
