// Crop, flip and normalise one image through a per-channel 256-entry table.
#include "data/augment.h"

#include "core/error.h"

#include <algorithm>

namespace kindling::data {

namespace {

// An integer in [0, range) from 24 random bits (multiply-shift: bias below range / 2^24).
int64_t bits_to_offset(uint64_t bits24, int64_t range) {
  return static_cast<int64_t>((bits24 * static_cast<uint64_t>(range)) >> 24);
}

}  // namespace

CropFlip draw_crop_flip(uint64_t bits, int64_t padding, bool random_crop, bool random_flip) {
  CropFlip crop{padding, padding, false};
  if (random_crop) {
    crop.dy = bits_to_offset(bits & 0xffffff, 2 * padding + 1);
    crop.dx = bits_to_offset((bits >> 24) & 0xffffff, 2 * padding + 1);
  }
  if (random_flip) crop.flip = (bits >> 63) != 0;
  return crop;
}

ImageTransform::ImageTransform(int64_t channels, int64_t height, int64_t width,
                               const std::vector<float>& mean, const std::vector<float>& std, bool normalize)
    : channels_(channels), height_(height), width_(width), table_(channels * 256) {
  KINDLING_CHECK(!normalize || (static_cast<int64_t>(mean.size()) == channels &&
                                static_cast<int64_t>(std.size()) == channels),
                 ValueError, "image transform: expected {} normalisation means and stds, found {} and {}",
                 channels, mean.size(), std.size());
  for (int64_t c = 0; c < channels; ++c) {
    for (int p = 0; p < 256; ++p) {
      const float unit = static_cast<float>(p) / 255.0f;
      table_[c * 256 + p] = normalize ? (unit - mean[c]) / std[c] : unit;
    }
  }
}

void ImageTransform::apply(const uint8_t* src, const CropFlip& crop, int64_t padding, float* dst) const {
  const int64_t H = height_, W = width_;
  // Output columns whose source column lies inside the image: x in [x_begin, x_end).
  const int64_t shift = crop.dx - padding;  // source column = x' + shift
  const int64_t x_begin = std::clamp(crop.flip ? shift : -shift, int64_t{0}, W);
  const int64_t x_end = std::clamp(crop.flip ? W + shift : W - shift, int64_t{0}, W);
  for (int64_t c = 0; c < channels_; ++c) {
    const float* table = table_.data() + c * 256;
    const float pad_value = table[0];
    for (int64_t y = 0; y < H; ++y) {
      float* out = dst + (c * H + y) * W;
      const int64_t sy = y + crop.dy - padding;
      if (sy < 0 || sy >= H) {
        std::fill(out, out + W, pad_value);
        continue;
      }
      const uint8_t* row = src + (c * H + sy) * W;
      std::fill(out, out + x_begin, pad_value);
      if (crop.flip) {
        for (int64_t x = x_begin; x < x_end; ++x) out[x] = table[row[W - 1 - x + shift]];
      } else {
        for (int64_t x = x_begin; x < x_end; ++x) out[x] = table[row[x + shift]];
      }
      std::fill(out + std::max(x_begin, x_end), out + W, pad_value);
    }
  }
}

}  // namespace kindling::data
