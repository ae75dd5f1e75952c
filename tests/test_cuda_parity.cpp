// The parity walk: every registry case runs on the CPU and on CUDA from the same inputs (in the
// same strided layouts), and the outputs and input gradients must agree. Skipped with a message
// when no GPU is present.
#include "core/autograd.h"
#include "core/backend.h"
#include "ops/ops.h"
#include "ops/registry.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace {
using namespace kindling;

// t on `device` with the same shape, strides and offset: the whole storage is copied, so a
// transposed or sliced input stays transposed or sliced on the GPU.
Tensor same_layout_on(const Tensor& t, Device device) {
  const int64_t capacity = int64_t(t.storage()->nbytes() / dtype_size(t.dtype()));
  Tensor flat = as_strided(t, {capacity}, {1}, 0).to(device);
  Tensor moved = as_strided(flat, t.shape(), t.strides(), t.offset());
  if (t.requires_grad()) moved.set_requires_grad(true);
  return moved;
}

// max |a - b| / max(1, |a|) over elements; infinity when shapes differ or only one is NaN.
double max_relative_difference(const Tensor& cpu, const Tensor& cuda) {
  if (cpu.shape() != cuda.shape()) return INFINITY;
  const std::vector<float> a = cpu.to_vector<float>(), b = cuda.cpu().to_vector<float>();
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    const double d = std::fabs(double(a[i]) - double(b[i])) / std::max(1.0, std::fabs(double(a[i])));
    worst = std::isnan(d) ? INFINITY : std::max(worst, d);
  }
  return worst;
}

constexpr double kTolerance = 1e-4;

void check_case(const OpCase& c, uint64_t seed) {
  Generator gen(seed);
  const std::vector<Tensor> cpu_inputs = c.make_inputs(gen);
  std::vector<Tensor> cuda_inputs;
  for (const Tensor& t : cpu_inputs) cuda_inputs.push_back(same_layout_on(t, Device::cuda()));

  Tensor cpu_out = c.forward(cpu_inputs), cuda_out = c.forward(cuda_inputs);
  REQUIRE_MESSAGE(cuda_out.device().is_cuda(), c.name, ": the CUDA run produced ", cuda_out.describe());
  const double forward_diff = max_relative_difference(cpu_out, cuda_out);
  CHECK_MESSAGE(forward_diff <= kTolerance, c.name, ": forward differs by ", forward_diff);
  if (!c.differentiable) return;

  std::vector<float> r(size_t(cpu_out.numel()));
  for (float& v : r) v = float(gen.normal());
  const Tensor weights = from_vector(r, cpu_out.shape());
  sum(mul(cpu_out, weights)).backward();
  sum(mul(cuda_out, weights.to(Device::cuda()))).backward();
  for (size_t i = 0; i < cpu_inputs.size(); ++i) {
    if (!cpu_inputs[i].requires_grad()) continue;
    const Tensor& g_cpu = cpu_inputs[i].grad();
    const Tensor& g_cuda = cuda_inputs[i].grad();
    REQUIRE_MESSAGE(g_cpu.defined() == g_cuda.defined(), c.name, ": input ", i,
                    " has a gradient on one device only");
    if (!g_cpu.defined()) continue;
    const double grad_diff = max_relative_difference(g_cpu, g_cuda);
    CHECK_MESSAGE(grad_diff <= kTolerance, c.name, ": gradient of input ", i, " differs by ", grad_diff);
  }
}

TEST_CASE("cuda parity: every registry case matches the CPU in forward and input gradients") {
  if (!cuda_available()) {
    MESSAGE("skipped: no CUDA device (built without CUDA or no GPU visible)");
    return;
  }
  int compared = 0;
  uint64_t seed = 2000;
  for (const OpCase& c : all_op_cases()) {
    try {
      check_case(c, ++seed);
    } catch (const std::exception& e) {
      FAIL_CHECK(c.name, " threw: ", std::string(e.what()));
    }
    ++compared;
  }
  MESSAGE("compared ", compared, " cases on CPU and CUDA");
}

TEST_CASE("cuda parity: same_layout_on keeps values and strides on the GPU") {
  if (!cuda_available()) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  Tensor base = arange(12).reshape({3, 4});
  Tensor view = base.t();
  Tensor on_gpu = same_layout_on(view, Device::cuda());
  CHECK(on_gpu.strides() == view.strides());
  CHECK(on_gpu.to_vector<float>() == view.to_vector<float>());
}

}  // namespace
