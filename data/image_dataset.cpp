// Subsets, validation splits and statistics of an in-memory ImageDataset.
#include "data/image_dataset.h"

#include "core/error.h"
#include "core/rng.h"
#include "data/shuffle.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace kindling::data {

ImageDataset subset(const ImageDataset& dataset, std::span<const int64_t> indices) {
  ImageDataset out = dataset;  // metadata; the sample arrays are rebuilt below
  const int64_t numel = dataset.image_numel();
  out.images.assign(indices.size() * static_cast<size_t>(numel), 0);
  out.labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const int64_t index = indices[i];
    KINDLING_CHECK(index >= 0 && index < dataset.size(), ValueError,
                   "subset of {}: expected sample indices in [0, {}), found {}", dataset.name, dataset.size(),
                   index);
    std::memcpy(out.images.data() + i * numel, dataset.image(index).data(), numel);
    out.labels[i] = dataset.labels[index];
  }
  return out;
}

ImageDataset limit(const ImageDataset& dataset, int64_t n) {
  KINDLING_CHECK(n >= 0, ValueError, "limit of {}: expected a sample count >= 0, found {}", dataset.name, n);
  ImageDataset out = dataset;
  const int64_t kept = std::min(n, dataset.size());
  out.images.resize(kept * dataset.image_numel());
  out.labels.resize(kept);
  out.images.shrink_to_fit();
  out.labels.shrink_to_fit();
  return out;
}

namespace {

int64_t validation_count(const ImageDataset& dataset, double fraction) {
  KINDLING_CHECK(fraction > 0.0 && fraction < 1.0, ValueError,
                 "validation split of {}: expected a fraction in (0, 1), found {}", dataset.name, fraction);
  const auto count = static_cast<int64_t>(std::llround(fraction * dataset.size()));
  KINDLING_CHECK(count > 0 && count < dataset.size(), ValueError,
                 "validation split of {}: a fraction of {} of {} samples leaves {} for validation and {} "
                 "for training; expected both to be non-empty",
                 dataset.name, fraction, dataset.size(), count, dataset.size() - count);
  return count;
}

TrainValidationSplit split_by_mask(const ImageDataset& dataset, const std::vector<bool>& is_validation) {
  std::vector<int64_t> train_indices, validation_indices;
  for (int64_t i = 0; i < dataset.size(); ++i)
    (is_validation[i] ? validation_indices : train_indices).push_back(i);
  return {subset(dataset, train_indices), subset(dataset, validation_indices)};
}

}  // namespace

TrainValidationSplit split_validation(const ImageDataset& dataset, double fraction) {
  const int64_t count = validation_count(dataset, fraction);
  std::vector<bool> is_validation(dataset.size(), false);
  std::fill(is_validation.end() - count, is_validation.end(), true);
  return split_by_mask(dataset, is_validation);
}

TrainValidationSplit split_validation(const ImageDataset& dataset, double fraction, uint64_t seed) {
  const int64_t count = validation_count(dataset, fraction);
  Generator generator(seed);
  const std::vector<int64_t> order = random_permutation(dataset.size(), generator);
  std::vector<bool> is_validation(dataset.size(), false);
  for (int64_t i = 0; i < count; ++i) is_validation[order[i]] = true;
  return split_by_mask(dataset, is_validation);
}

ChannelStats compute_channel_stats(const ImageDataset& dataset) {
  const int64_t C = dataset.channels, HW = dataset.height * dataset.width;
  // Per-channel histograms make the sums exact integers, whatever the dataset size.
  std::vector<std::array<uint64_t, 256>> histogram(C);
  for (auto& h : histogram) h.fill(0);
  for (int64_t n = 0; n < dataset.size(); ++n) {
    const uint8_t* image = dataset.image(n).data();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) ++histogram[c][image[c * HW + i]];
  }
  ChannelStats stats;
  for (int64_t c = 0; c < C; ++c) {
    double count = 0, sum = 0, sum_sq = 0;
    for (int v = 0; v < 256; ++v) {
      const double x = v / 255.0, k = static_cast<double>(histogram[c][v]);
      count += k;
      sum += k * x;
      sum_sq += k * x * x;
    }
    const double mean = count > 0 ? sum / count : 0.0;
    stats.mean.push_back(mean);
    stats.std.push_back(count > 0 ? std::sqrt(std::max(0.0, sum_sq / count - mean * mean)) : 0.0);
  }
  return stats;
}

void check_consistent(const ImageDataset& dataset) {
  const std::string& name = dataset.name;
  KINDLING_CHECK(dataset.channels > 0 && dataset.height > 0 && dataset.width > 0, ValueError,
                 "dataset {}: expected positive image dimensions, found {}x{}x{}", name, dataset.channels,
                 dataset.height, dataset.width);
  KINDLING_CHECK(dataset.images.size() == static_cast<size_t>(dataset.size() * dataset.image_numel()),
                 ValueError, "dataset {}: expected {} image bytes for {} images of {}x{}x{}, found {}", name,
                 dataset.size() * dataset.image_numel(), dataset.size(), dataset.channels, dataset.height,
                 dataset.width, dataset.images.size());
  KINDLING_CHECK(dataset.num_classes > 0, ValueError, "dataset {}: expected at least one class, found {}",
                 name, dataset.num_classes);
  for (int64_t i = 0; i < dataset.size(); ++i) {
    KINDLING_CHECK(dataset.labels[i] >= 0 && dataset.labels[i] < dataset.num_classes, ValueError,
                   "dataset {}: label {} of sample {} is out of range: expected 0..{}", name,
                   dataset.labels[i], i, dataset.num_classes - 1);
  }
  KINDLING_CHECK(
      dataset.class_names.empty() || static_cast<int64_t>(dataset.class_names.size()) == dataset.num_classes,
      ValueError, "dataset {}: expected {} class names, found {}", name, dataset.num_classes,
      dataset.class_names.size());
  KINDLING_CHECK(static_cast<int64_t>(dataset.mean.size()) == dataset.channels &&
                     static_cast<int64_t>(dataset.std.size()) == dataset.channels,
                 ValueError, "dataset {}: expected {} normalisation means and stds, found {} and {}", name,
                 dataset.channels, dataset.mean.size(), dataset.std.size());
  for (float s : dataset.std)
    KINDLING_CHECK(s > 0.0f, ValueError, "dataset {}: expected positive normalisation stds, found {}", name,
                   s);
}

}  // namespace kindling::data
