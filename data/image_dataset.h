// ImageDataset: a whole image classification dataset held in memory as raw bytes, the form every
// reader produces and the Loader consumes. The largest supported set (EMNIST byclass, 698k images of
// 28x28) is 547 MB, so holding it whole is simpler and faster than reading on demand.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kindling::data {

struct ImageDataset {
  std::string name;   // registry name, e.g. "cifar10", "emnist-letters"
  bool train = true;  // training or test split of the published data
  int64_t channels = 0, height = 0, width = 0;
  int64_t num_classes = 0;
  std::vector<uint8_t> images;           // [N, C, H, W] row-major, upright (EMNIST already transposed)
  std::vector<int64_t> labels;           // [N], each in [0, num_classes)
  std::vector<std::string> class_names;  // num_classes names, or empty when unknown
  // Per-channel statistics of pixel / 255 used for normalisation: x = (pixel / 255 - mean) / std.
  std::vector<float> mean, std;
  // Random crop and horizontal flip are the usual training augmentation for this dataset
  // (CIFAR: yes; the MNIST family: no, since a flipped digit is another symbol).
  bool augment_by_default = false;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t image_numel() const { return channels * height * width; }
  // Requires 0 <= index < size(). The bytes of one [C, H, W] image.
  std::span<const uint8_t> image(int64_t index) const {
    return {images.data() + index * image_numel(), static_cast<size_t>(image_numel())};
  }
};

// The same dataset reduced to the samples at `indices` (in that order). Throws ValueError for an
// index outside [0, size()).
ImageDataset subset(const ImageDataset& dataset, std::span<const int64_t> indices);
// The first min(n, size()) samples. Requires n >= 0.
ImageDataset limit(const ImageDataset& dataset, int64_t n);

// A training set split into the part trained on and a held-out validation part. Both keep the
// original sample order.
struct TrainValidationSplit {
  ImageDataset train;
  ImageDataset validation;
};
// Validation = the last round(fraction * size()) samples. Requires 0 < fraction < 1 and both parts
// non-empty (ValueError otherwise).
TrainValidationSplit split_validation(const ImageDataset& dataset, double fraction);
// Validation = a random subset of the same size drawn from `seed` alone.
TrainValidationSplit split_validation(const ImageDataset& dataset, double fraction, uint64_t seed);

// Per-channel mean and standard deviation of pixel / 255 over the whole dataset (accumulated in
// double). Used to check the published constants and for datasets without them.
struct ChannelStats {
  std::vector<double> mean, std;
};
ChannelStats compute_channel_stats(const ImageDataset& dataset);

// Throws FileError/ValueError when the fields disagree: image bytes != size() * C*H*W, labels out
// of range, wrong number of class names or normalisation constants. Readers call it last.
void check_consistent(const ImageDataset& dataset);

}  // namespace kindling::data
