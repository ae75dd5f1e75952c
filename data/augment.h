// The loader's per-sample transform: an optional random crop from the image padded with zeros and
// an optional horizontal flip (the standard CIFAR augmentation), fused with normalisation, from raw
// u8 [C,H,W] to f32 [C,H,W]. One pass over the output, one table look-up per pixel.
#pragma once
#include <cstdint>
#include <vector>

namespace kindling::data {

// Where the crop window sits in the image padded by `padding` zero pixels on each side (dy, dx in
// [0, 2 * padding]; dy = dx = padding is the uncropped image), and whether to mirror the result.
struct CropFlip {
  int64_t dy = 0, dx = 0;
  bool flip = false;
};

// One sample's crop offsets and flip from 64 random bits: dy from bits 0-23, dx from bits 24-47,
// flip from bit 63. `random_crop` false gives dy = dx = padding; `random_flip` false gives no flip.
CropFlip draw_crop_flip(uint64_t bits, int64_t padding, bool random_crop, bool random_flip);

class ImageTransform {
 public:
  // mean/std: per channel, of pixel / 255. normalize false maps pixel p to p / 255.
  ImageTransform(int64_t channels, int64_t height, int64_t width, const std::vector<float>& mean,
                 const std::vector<float>& std, bool normalize);

  // src u8 [C,H,W] -> dst f32 [C,H,W]:
  //   dst[c,y,x] = v(c, src[c, y + dy - padding, x' + dx - padding]),  x' = flip ? W-1-x : x,
  // where a source pixel outside the image is 0 (zero padding, then normalised like any pixel)
  // and v(c, p) = (p / 255 - mean[c]) / std[c].
  void apply(const uint8_t* src, const CropFlip& crop, int64_t padding, float* dst) const;

  // v(c, p): the normalised value of pixel value p in channel c.
  float value(int64_t channel, uint8_t pixel) const { return table_[channel * 256 + pixel]; }

 private:
  int64_t channels_, height_, width_;
  std::vector<float> table_;  // [C, 256]
};

}  // namespace kindling::data
