// The arithmetic behind `kindling bench`'s GFLOP/s and peak fraction: the FLOPs of a training step
// counted from the graph, against counts worked out by hand from the models' layers, and the peak
// kernels' FLOPs per round. Nothing here is timed.
#include "nn/flops.h"
#include "nn/models.h"
#include "ops/cpu/peak.h"
#include "ops/ops.h"

#include <doctest/doctest.h>

#include <cmath>

using namespace kindling;

namespace {

// MACs of a k×k convolution from `in` to `out` channels with a side×side output map.
constexpr double conv_macs(double in, double out, double k, double side) {
  return in * out * k * k * side * side;
}

// The FLOPs counted for one 3x32x32 image through `model_name` against the layers' MACs summed by
// hand: forward 2·MACs, backward 4·MACs except the first convolution's input gradient, which is not
// computed (the images need none).
void check_step_flops(const char* model_name, double macs, double first_conv_macs, double expected_total) {
  auto model = make_model(model_name, 3, 10, 32);
  const TrainingFlops flops = training_flops_per_image(*model, 3, 32);
  CHECK(flops.forward == 2 * macs);
  CHECK(flops.total() == 6 * macs - 2 * first_conv_macs);
  CHECK(flops.total() == expected_total);
  CHECK(model->is_training());  // the mode is put back
}

}  // namespace

TEST_CASE("flops: ResNet-20 on 3x32x32 images, layer by layer") {
  const double stem = conv_macs(3, 16, 3, 32);
  const double stage1 = 6 * conv_macs(16, 16, 3, 32);
  const double stage2 = conv_macs(16, 32, 3, 16) + 5 * conv_macs(32, 32, 3, 16);  // option-A shortcuts
  const double stage3 = conv_macs(32, 64, 3, 8) + 5 * conv_macs(64, 64, 3, 8);
  const double fc = 64 * 10;
  const double macs = stem + stage1 + stage2 + stage3 + fc;
  CHECK(macs == 40551040);
  check_step_flops("resnet20", macs, stem, 242421504);  // 0.2424 GFLOP per image
}

TEST_CASE("flops: ResNet-18 (3x3 stem) on 3x32x32 images, layer by layer") {
  const double stem = conv_macs(3, 64, 3, 32);
  const double layer1 = 4 * conv_macs(64, 64, 3, 32);
  double later_layers = 0;
  for (double planes : {128, 256, 512}) {
    const double side = 32 * 64 / planes;  // 16, 8, 4
    later_layers += conv_macs(planes / 2, planes, 3, side) + 3 * conv_macs(planes, planes, 3, side) +
                    conv_macs(planes / 2, planes, 1, side);  // the 1x1 downsample
  }
  const double macs = stem + layer1 + later_layers + 512 * 10;
  CHECK(macs == 555422720);
  check_step_flops("resnet18", macs, stem, 3328997376);  // 3.33 GFLOP per image
}

TEST_CASE("flops: gradients that are not computed are not counted") {
  const Tensor x = randn({4, 6});
  const Tensor w = randn({5, 6}).set_requires_grad(true), b = randn({5}).set_requires_grad(true);
  CHECK(training_flops(linear(x, w, b)).forward == 2 * 4 * 5 * 6);
  CHECK(training_flops(linear(x, w, b)).backward == 2 * 4 * 5 * 6);  // weight gradient only
  const Tensor xg = randn({4, 6}).set_requires_grad(true);
  CHECK(training_flops(linear(xg, w, b)).backward == 4 * 4 * 5 * 6);
  // A convolution reused twice counts twice; the same node reached by two paths counts once.
  const Tensor image = randn({2, 3, 8, 8}).set_requires_grad(true);
  const Tensor kernel = randn({4, 3, 3, 3}).set_requires_grad(true);
  const Tensor y = conv2d(image, kernel, {}, 1, 1);
  const double macs = 2.0 * 4 * 8 * 8 * 3 * 3 * 3;
  CHECK(training_flops(add(y, y)).total() == 6 * macs);
  CHECK(training_flops(add(y, conv2d(image, kernel, {}, 1, 1))).total() == 12 * macs);
  NoGradGuard no_grad;
  CHECK(training_flops(conv2d(image, kernel, {}, 1, 1)).total() == 0);  // no graph, nothing counted
  auto model = make_model("resnet20", 3, 10, 32);
  CHECK(training_flops_per_image(*model, 3, 32).total() == 242421504);  // grad mode is turned on for it
  CHECK(!GradMode::is_enabled());                                       // and put back
}

TEST_CASE("peak kernels: FLOPs per round from the vector width and chain count") {
  const std::vector<cpu::PeakKernel> kernels = cpu::peak_kernels();
  REQUIRE(!kernels.empty());
  CHECK(kernels[0].name == "fp32_fma");
  for (const cpu::PeakKernel& k : kernels) {
    INFO(k.name << " " << k.isa);
    const int lanes = k.isa == "avx512" ? 16 : k.isa == "avx2" ? 8 : k.isa == "avx512_bf16" ? 32 : 1;
    CHECK(k.flops_per_round == 2.0 * lanes * k.chains);
    const float result = k.run(1000);  // runs, and stays finite over many rounds
    CHECK(std::isfinite(result));
    CHECK(result > 0);
  }
#if defined(__AVX512F__)
  CHECK(kernels[0].isa == "avx512");
#elif defined(__AVX2__) && defined(__FMA__)
  CHECK(kernels[0].isa != "scalar");
#endif
#if defined(__AVX512BF16__)
  REQUIRE(kernels.size() == 2);
  CHECK(kernels[1].name == "bf16_dot");
#endif
}
