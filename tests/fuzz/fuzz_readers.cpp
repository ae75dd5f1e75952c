// libFuzzer target for the dataset readers: every input is tried as a (possibly gzip) IDX file, as
// an IDX image/label pair, and as CIFAR-10 and CIFAR-100 record files. A reader may reject the input
// only with a kindling::Error; a crash, a sanitizer report, a leak or any other exception is a bug.
//
// Input layout for the pair: bytes 0-1 (little-endian) give the length of the images file, which
// follows; the labels file is the rest.
#include "core/error.h"
#include "data/cifar.h"
#include "data/file_bytes.h"
#include "data/idx.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace {

using namespace kindling::data;

// Enough for any input libFuzzer makes (deflate expands at most ~1032x), small enough for its
// memory limit.
constexpr size_t kFuzzMaxDecompressed = size_t(64) << 20;

template <typename Fn>
void expect_only_kindling_errors(Fn&& fn) {
  try {
    fn();
  } catch (const kindling::Error&) {
    // rejected as bad input: fine
  }
}

void check_pair(std::span<const uint8_t> input) {
  if (input.size() < 2) return;
  const size_t images_size = std::min<size_t>(input[0] | (size_t(input[1]) << 8), input.size() - 2);
  const auto images = input.subspan(2, images_size);
  const auto labels = input.subspan(2 + images_size);
  for (const IdxLayout& layout : {IdxLayout{}, IdxLayout{0, 0, 26, 1, true}}) {
    expect_only_kindling_errors([&] {
      const ImageDataset d = parse_idx_dataset("images", images, "labels", labels, layout);
      // Invariants the loader relies on.
      if (d.images.size() != static_cast<size_t>(d.size() * d.image_numel())) __builtin_trap();
      for (int64_t label : d.labels)
        if (label < 0 || label >= d.num_classes) __builtin_trap();
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  expect_only_kindling_errors([&] {
    const IdxView view = parse_idx("input.idx", input);
    size_t product = 1;
    for (int64_t d : view.dims) product *= static_cast<size_t>(d);
    if (product != view.values.size()) __builtin_trap();
  });
  expect_only_kindling_errors([&] {
    const std::vector<uint8_t> decoded =
        decode_file_bytes("input.gz", std::vector<uint8_t>(input.begin(), input.end()), kFuzzMaxDecompressed);
    parse_idx("input.gz", decoded);
    ImageDataset cifar;
    parse_cifar_into("input.gz", decoded, CifarFormat::cifar10, cifar);
  });
  check_pair(input);
  for (CifarFormat format :
       {CifarFormat::cifar10, CifarFormat::cifar100_fine, CifarFormat::cifar100_coarse}) {
    expect_only_kindling_errors([&] {
      ImageDataset d;
      parse_cifar_into("input.bin", input, format, d);
      if (d.images.size() != static_cast<size_t>(d.size()) * 3072) __builtin_trap();
      for (int64_t label : d.labels)
        if (label < 0 || label >= d.num_classes) __builtin_trap();
    });
  }
  return 0;
}
