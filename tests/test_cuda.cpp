// The CUDA backend against the CPU backend, kernel family by kernel family, on small inputs that
// include strided and broadcast views; the caching allocator's reuse and statistics; host
// transfers. Every test that needs a GPU skips with a message when there is none, and one test
// checks that a machine without a GPU runs CPU-only. (The op-registry walk, forward and backward,
// is tests/test_cuda_parity.cpp.)
#include "core/backend.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "losses/loss_kernels.h"
#include "ops/batchnorm.h"
#include "ops/pool.h"
#include "tests/test_util.h"
#ifdef KINDLING_WITH_CUDA
#include "ops/cuda/cuda_backend.h"
#endif

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

using namespace kindling;

namespace {

const Device kCuda = Device::cuda();

// Skips the rest of a test case when there is no GPU; under KINDLING_REQUIRE_CUDA, cuda_available()
// throws instead and the case fails with CUDA's reason.
#define SKIP_WITHOUT_GPU()                                                            \
  do {                                                                                \
    if (!cuda_available()) {                                                          \
      MESSAGE("skipped: no CUDA GPU on this machine: " << cuda_unavailable_reason()); \
      return;                                                                         \
    }                                                                                 \
  } while (0)

Backend& gpu() { return backend(kCuda); }

Tensor uniform(const Shape& shape, uint64_t seed, double low = -2.0, double high = 2.0) {
  Generator generator(seed);
  return rand(shape, {}, &generator, low, high);
}
Tensor empty_on(const Shape& shape, Device device, DType dtype = DType::f32) {
  return empty(shape, TensorOptions{}.with_dtype(dtype).with_device(device));
}

// ||gpu - cpu|| <= rtol * ||cpu|| over all elements, in double. For results whose algorithm may
// change the rounding (cuDNN's Winograd and FFT convolutions differ by ~1e-4 near zero), where a
// per-element bound would flag values that are only small.
void check_norm_close(const Tensor& on_gpu, const Tensor& on_cpu, double rtol, const std::string& what) {
  REQUIRE(on_gpu.shape() == on_cpu.shape());
  const double error = test::relative_norm_error(on_gpu.to_vector<float>(), on_cpu.to_vector<float>());
  INFO(what << ": ||cuda - cpu|| / ||cpu|| = " << error);
  CHECK(error <= rtol);
}

// |gpu - cpu| <= atol + rtol * |cpu| everywhere (NaN matches NaN); reports the first miss.
void check_close(const Tensor& on_gpu, const Tensor& on_cpu, double rtol, double atol,
                 const std::string& what) {
  REQUIRE(on_gpu.shape() == on_cpu.shape());
  const std::vector<float> g = on_gpu.to_vector<float>(), c = on_cpu.to_vector<float>();
  size_t misses = 0, first = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const bool both_nan = std::isnan(g[i]) && std::isnan(c[i]);
    if (!both_nan && !(std::fabs(double(g[i]) - double(c[i])) <= atol + rtol * std::fabs(double(c[i])))) {
      if (misses++ == 0) first = i;
    }
  }
  INFO(what << ": " << misses << " of " << c.size() << " elements differ; first at " << first << ": cuda "
            << (c.empty() ? 0.0f : g[first]) << ", cpu " << (c.empty() ? 0.0f : c[first]));
  CHECK(misses == 0);
}

void check_equal_i64(const Tensor& on_gpu, const Tensor& on_cpu, const std::string& what) {
  INFO(what);
  CHECK(on_gpu.to_vector<int64_t>() == on_cpu.to_vector<int64_t>());
}

}  // namespace

TEST_CASE("cuda: without a GPU the CUDA-enabled build runs CPU-only") {
  if (cuda_available()) {
    CHECK(cuda_device_count() > 0);
    CHECK(gpu().device() == kCuda);
    MESSAGE("a GPU is present: " << gpu().name());
    return;
  }
  CHECK(cuda_device_count() == 0);
  CHECK(!cuda_unavailable_reason().empty());
  MESSAGE("CPU only: " << cuda_unavailable_reason());
  CHECK_THROWS_AS(backend(kCuda), DeviceError);
  try {
    backend(kCuda);
  } catch (const DeviceError& e) {
#ifdef KINDLING_WITH_CUDA
    const std::string expected = "no CUDA GPU is available: " + cuda_unavailable_reason();
    CHECK(std::string(e.what()).find(expected) != std::string::npos);
#else
    CHECK(std::string(e.what()).find("built without CUDA") != std::string::npos);
#endif
  }
  CHECK_THROWS_AS(zeros({2, 3}, TensorOptions{}.with_device(kCuda)), DeviceError);
  CHECK(zeros({2, 3}).to_vector<float>() == std::vector<float>(6, 0.0f));  // the CPU still works
}

// Runs fn with KINDLING_REQUIRE_CUDA set to `value`, then restores the variable.
template <typename Fn>
void with_require_cuda(const char* value, Fn fn) {
  const char* old = std::getenv("KINDLING_REQUIRE_CUDA");
  const std::string saved = old ? old : "";
  setenv("KINDLING_REQUIRE_CUDA", value, 1);
  fn();
  if (old)
    setenv("KINDLING_REQUIRE_CUDA", saved.c_str(), 1);
  else
    unsetenv("KINDLING_REQUIRE_CUDA");
}

TEST_CASE("cuda: KINDLING_REQUIRE_CUDA turns a missing GPU into an error that says why") {
  with_require_cuda("1", [] {
    CHECK(cuda_required());
    std::string error;
    bool available = false;
    try {
      available = cuda_available();
    } catch (const DeviceError& e) {
      error = e.what();
    }
    if (available) {
      CHECK(cuda_unavailable_reason().empty());
      return;
    }
    INFO(error);
    CHECK(!cuda_unavailable_reason().empty());
    CHECK(error == "KINDLING_REQUIRE_CUDA is set but CUDA is unavailable: " + cuda_unavailable_reason());
#ifdef KINDLING_WITH_CUDA
    // The reason quotes the CUDA call or error that failed (cudaGetDeviceCount, cudaErrorNoDevice, ...).
    CHECK(error.find("cuda") != std::string::npos);
#endif
  });
  with_require_cuda("0", [] {
    CHECK(!cuda_required());
    CHECK_NOTHROW((void)cuda_available());
  });
}

TEST_CASE("cuda: host round trips, strided and converting copies, fills") {
  SKIP_WITHOUT_GPU();
  // Larger than the 4 MiB pinned chunk, so several chunks travel both ways.
  const Tensor big = uniform({3, 1000, 1111}, 1);
  CHECK(big.to(kCuda).cpu().to_vector<float>() == big.to_vector<float>());
  const std::vector<int64_t> labels{-5, 0, 7, int64_t(1) << 40, 3};
  CHECK(from_vector(labels, {5}, TensorOptions{}.with_device(kCuda)).to_vector<int64_t>() == labels);
  const std::vector<uint8_t> bytes{0, 1, 128, 255};
  CHECK(from_vector(bytes, {2, 2}, TensorOptions{}.with_device(kCuda)).to_vector<uint8_t>() == bytes);

  const Tensor x = uniform({5, 7}, 2, 0.0, 200.0);
  const Tensor x_gpu = x.to(kCuda);
  for (DType to : {DType::f32, DType::i64, DType::u8}) {
    Tensor out_cpu = empty_on({7, 5}, Device::cpu(), to), out_gpu = empty_on({7, 5}, kCuda, to);
    cpu_backend().copy(out_cpu, x.t());
    gpu().copy(out_gpu, x_gpu.t());
    INFO("f32 transposed -> " << dtype_name(to));
    if (to == DType::f32) check_close(out_gpu, out_cpu, 0, 0, "copy");
    if (to == DType::i64) CHECK(out_gpu.to_vector<int64_t>() == out_cpu.to_vector<int64_t>());
    if (to == DType::u8) CHECK(out_gpu.to_vector<uint8_t>() == out_cpu.to_vector<uint8_t>());
  }
  const Tensor counts = from_vector(labels, {5}).to(kCuda);
  Tensor as_float = empty_on({5}, kCuda);
  gpu().copy(as_float, counts);
  CHECK(as_float.to_vector<float>() == std::vector<float>{-5.0f, 0.0f, 7.0f, float(int64_t(1) << 40), 3.0f});

  Tensor filled = empty_on({4, 6}, kCuda);
  gpu().fill(filled, 2.5);
  gpu().fill(filled.t().slice(0, 1, 3), -1.0);  // a strided view: columns 1 and 2
  const std::vector<float> values = filled.to_vector<float>();
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) CHECK(values[size_t(r * 6 + c)] == (c == 1 || c == 2 ? -1.0f : 2.5f));
  Tensor ids = empty_on({3}, kCuda, DType::i64);
  gpu().fill(ids, 9.0);
  CHECK(ids.to_vector<int64_t>() == std::vector<int64_t>{9, 9, 9});
}

TEST_CASE("cuda: the caching allocator reuses blocks and does not grow over 100 identical steps") {
  SKIP_WITHOUT_GPU();
  Allocator& allocator = gpu().allocator();
  gpu().synchronize();
  {
    const void* first = nullptr;
    {
      const Tensor a = empty_on({1 << 18}, kCuda);
      first = a.data_ptr();
      CHECK(allocator.stats().allocated_bytes >= size_t(1 << 20));
    }
    const Tensor b = empty_on({1 << 18}, kCuda);
    CHECK(b.data_ptr() == first);  // the freed block came back
  }
  auto step = [&] {
    const Tensor x = uniform({64, 33}, 3).to(kCuda);
    Tensor y = empty_on({64, 33}, kCuda), total = empty_on({64}, kCuda);
    gpu().unary(UnaryOp::Exp, y, x, 0, 0);
    gpu().reduce(ReduceOp::Sum, total, y, 64, 33, 1);
    Tensor scratch = empty_on({3, 1000, 7}, kCuda);
    gpu().fill(scratch, 1.0);
    (void)total.cpu();
  };
  const AllocatorStats before = allocator.stats();
  step();
  const AllocatorStats after_one = allocator.stats();
  for (int i = 0; i < 100; ++i) step();
  const AllocatorStats after = allocator.stats();
  CHECK(after.allocated_bytes == before.allocated_bytes);
  CHECK(after.reserved_bytes == after_one.reserved_bytes);
  CHECK(after.num_system_allocs == after_one.num_system_allocs);
  CHECK(after.num_allocs - after_one.num_allocs == 100 * (after_one.num_allocs - before.num_allocs));
  CHECK(after.peak_allocated_bytes >= after.allocated_bytes);

  {
    const Tensor held = empty_on({1 << 20}, kCuda);
    allocator.reset_peak();
    CHECK(allocator.stats().peak_allocated_bytes == allocator.stats().allocated_bytes);
  }
  allocator.empty_cache();
  const AllocatorStats emptied = allocator.stats();
  CHECK(emptied.reserved_bytes == emptied.allocated_bytes);
}

TEST_CASE("cuda: unary, binary and where match the CPU on strided and broadcast views") {
  SKIP_WITHOUT_GPU();
  const Tensor base = uniform({5, 4}, 4, 0.25, 2.0);  // positive: log, sqrt, pow all defined
  const Tensor base_gpu = base.to(kCuda);
  const Tensor in_cpu = base.t(), in_gpu = base_gpu.t();  // [4,5], strides [1,4]
  for (int op = int(UnaryOp::Neg); op <= int(UnaryOp::Affine); ++op) {
    Tensor out_cpu = empty_on({4, 5}, Device::cpu()), out_gpu = empty_on({4, 5}, kCuda);
    cpu_backend().unary(UnaryOp(op), out_cpu, in_cpu, 0.5f, 1.5f);
    gpu().unary(UnaryOp(op), out_gpu, in_gpu, 0.5f, 1.5f);
    check_close(out_gpu, out_cpu, 2e-6, 1e-7, "unary op " + std::to_string(op));
  }

  const Shape shape{3, 4, 5};
  const Tensor a = uniform({3, 1, 5}, 5, 0.5, 2.0), b = uniform({4, 5}, 6);
  const Tensor a_gpu = a.to(kCuda), b_gpu = b.to(kCuda);
  for (int op = int(BinaryOp::Add); op <= int(BinaryOp::ReluBackward); ++op) {
    Tensor out_cpu = empty_on(shape, Device::cpu()), out_gpu = empty_on(shape, kCuda);
    cpu_backend().binary(BinaryOp(op), out_cpu, broadcast_view(a, shape), broadcast_view(b, shape));
    gpu().binary(BinaryOp(op), out_gpu, broadcast_view(a_gpu, shape), broadcast_view(b_gpu, shape));
    check_close(out_gpu, out_cpu, 2e-6, 1e-7, "binary op " + std::to_string(op));
  }

  const Tensor cond = uniform({4, 1}, 7, -1.0, 1.0);
  Tensor cond_cpu = empty_on({4, 1}, Device::cpu());
  cpu_backend().binary(BinaryOp::Gt, cond_cpu, cond, zeros({4, 1}));
  const Tensor cond_gpu = cond_cpu.to(kCuda);
  Tensor out_cpu = empty_on({4, 5}, Device::cpu()), out_gpu = empty_on({4, 5}, kCuda);
  cpu_backend().where(out_cpu, broadcast_view(cond_cpu, {4, 5}), in_cpu,
                      broadcast_view(b.select(0, 0), {4, 5}));
  gpu().where(out_gpu, broadcast_view(cond_gpu, {4, 5}), in_gpu, broadcast_view(b_gpu.select(0, 0), {4, 5}));
  check_close(out_gpu, out_cpu, 0, 0, "where");
}

TEST_CASE("cuda: reductions match the CPU and repeat bit for bit") {
  SKIP_WITHOUT_GPU();
  struct Case {
    int64_t outer, reduce, inner;
  };
  for (const Case c : {Case{3, 1000, 1}, Case{2, 37, 5}, Case{1, 5000, 3}, Case{4, 1, 7}, Case{70, 9, 1},
                       Case{2, 300, 40}}) {
    const Tensor in = uniform({c.outer, c.reduce, c.inner}, 8);
    const Tensor in_gpu = in.to(kCuda);
    for (int op = int(ReduceOp::Sum); op <= int(ReduceOp::SumSquares); ++op) {
      const bool arg = ReduceOp(op) == ReduceOp::ArgMax || ReduceOp(op) == ReduceOp::ArgMin;
      const DType dtype = arg ? DType::i64 : DType::f32;
      Tensor out_cpu = empty_on({c.outer, c.inner}, Device::cpu(), dtype);
      Tensor out_gpu = empty_on({c.outer, c.inner}, kCuda, dtype),
             again = empty_on({c.outer, c.inner}, kCuda, dtype);
      cpu_backend().reduce(ReduceOp(op), out_cpu, in, c.outer, c.reduce, c.inner);
      gpu().reduce(ReduceOp(op), out_gpu, in_gpu, c.outer, c.reduce, c.inner);
      gpu().reduce(ReduceOp(op), again, in_gpu, c.outer, c.reduce, c.inner);
      const std::string what = "reduce op " + std::to_string(op) + " on [" + std::to_string(c.outer) + "," +
                               std::to_string(c.reduce) + "," + std::to_string(c.inner) + "]";
      if (arg) {
        check_equal_i64(out_gpu, out_cpu, what);
      } else {
        check_close(out_gpu, out_cpu, 1e-6, 1e-6, what);
        CHECK(again.to_vector<float>() == out_gpu.to_vector<float>());
      }
    }
  }
}

TEST_CASE("cuda: strided batched gemm matches the CPU for every transpose") {
  SKIP_WITHOUT_GPU();
  const int64_t M = 5, N = 7, K = 9, batch = 3;
  for (int flags = 0; flags < 4; ++flags) {
    const bool ta = flags & 1, tb = flags & 2;
    const int64_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
    const int64_t sa = (ta ? K : M) * lda + 4, sb = (tb ? N : K) * ldb, sc = M * ldc + 1;
    const Tensor A = uniform({batch * sa}, 9), B = uniform({batch * sb}, 10), C = uniform({batch * sc}, 11);
    const Tensor A_gpu = A.to(kCuda), B_gpu = B.to(kCuda);
    Tensor C_cpu = C.clone(), C_gpu = C.to(kCuda);
    cpu_backend().gemm(ta, tb, M, N, K, 0.75f, A.data<float>(), lda, sa, B.data<float>(), ldb, sb, 0.5f,
                       C_cpu.data<float>(), ldc, sc, batch);
    gpu().gemm(ta, tb, M, N, K, 0.75f, A_gpu.data<float>(), lda, sa, B_gpu.data<float>(), ldb, sb, 0.5f,
               C_gpu.data<float>(), ldc, sc, batch);
    check_close(C_gpu, C_cpu, 1e-5, 1e-5,
                "gemm trans_a=" + std::to_string(ta) + " trans_b=" + std::to_string(tb));
  }
  // K == 0: C = beta * C.
  const Tensor C = uniform({2, 3}, 12);
  Tensor C_gpu = C.to(kCuda);
  gpu().gemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, 0, nullptr, 3, 0, 2.0f, C_gpu.data<float>(), 3, 6, 1);
  Tensor C_cpu = C.clone();
  cpu_backend().unary(UnaryOp::Affine, C_cpu, C, 2.0f, 0.0f);
  check_close(C_gpu, C_cpu, 0, 0, "gemm K=0");
}

TEST_CASE("cuda: softmax, log_softmax and their backward, one_hot") {
  SKIP_WITHOUT_GPU();
  for (const int64_t C : {int64_t(10), int64_t(1500)}) {
    const Tensor x = uniform({6, C}, 13, -8.0, 8.0), g = uniform({6, C}, 14);
    const Tensor x_gpu = x.to(kCuda), g_gpu = g.to(kCuda);
    for (const bool log : {false, true}) {
      Tensor y_cpu = empty_on({6, C}, Device::cpu()), y_gpu = empty_on({6, C}, kCuda);
      cpu_backend().softmax_fwd(y_cpu, x, log);
      gpu().softmax_fwd(y_gpu, x_gpu, log);
      const std::string what = std::string(log ? "log_softmax" : "softmax") + " C=" + std::to_string(C);
      check_close(y_gpu, y_cpu, 1e-5, 1e-7, what);
      Tensor dx_cpu = empty_on({6, C}, Device::cpu()), dx_gpu = empty_on({6, C}, kCuda);
      cpu_backend().softmax_bwd(dx_cpu, g, y_cpu, log);
      gpu().softmax_bwd(dx_gpu, g_gpu, y_gpu, log);
      check_close(dx_gpu, dx_cpu, 1e-4, 1e-6, what + " backward");
    }
  }
  const Tensor labels = from_vector<int64_t>({2, 0, 4, 4}, {4});
  Tensor hot_cpu = empty_on({4, 5}, Device::cpu()), hot_gpu = empty_on({4, 5}, kCuda);
  cpu_backend().one_hot(hot_cpu, labels);
  gpu().one_hot(hot_gpu, labels.to(kCuda));
  check_close(hot_gpu, hot_cpu, 0, 0, "one_hot");
}

TEST_CASE("cuda: conv2d forward, data and weight gradients match the CPU, twice") {
  SKIP_WITHOUT_GPU();
  auto geometry = [](int64_t stride, int64_t pad, int64_t dil, int64_t groups) {
    Conv2dParams p{};
    p.N = 2, p.C = 4, p.H = 9, p.W = 8, p.K = 6, p.R = 3, p.S = 3;
    p.stride_h = p.stride_w = stride, p.pad_h = p.pad_w = pad, p.dil_h = p.dil_w = dil, p.groups = groups;
    p.P = (p.H + 2 * pad - dil * (p.R - 1) - 1) / stride + 1;
    p.Q = (p.W + 2 * pad - dil * (p.S - 1) - 1) / stride + 1;
    return p;
  };
  for (const Conv2dParams& p : {geometry(1, 1, 1, 1), geometry(2, 1, 1, 2), geometry(1, 2, 2, 1)}) {
    const Tensor x = uniform({p.N, p.C, p.H, p.W}, 15), w = uniform({p.K, p.C / p.groups, p.R, p.S}, 16);
    const Tensor bias = uniform({p.K}, 17), dy = uniform({p.N, p.K, p.P, p.Q}, 18);
    const Tensor x_gpu = x.to(kCuda), w_gpu = w.to(kCuda), bias_gpu = bias.to(kCuda), dy_gpu = dy.to(kCuda);
    const std::string what = "conv stride " + std::to_string(p.stride_h) + " groups " +
                             std::to_string(p.groups) + " dilation " + std::to_string(p.dil_h);
    Tensor y_cpu = empty_on(dy.shape(), Device::cpu());
    cpu_backend().conv2d_fwd(p, y_cpu, x, w, bias);
    Tensor dx_cpu = empty_on(x.shape(), Device::cpu()), dw_cpu = empty_on(w.shape(), Device::cpu());
    Tensor db_cpu = empty_on({p.K}, Device::cpu());
    cpu_backend().conv2d_bwd_data(p, dx_cpu, dy, w);
    cpu_backend().conv2d_bwd_weight(p, dw_cpu, db_cpu, x, dy);
    for (int round = 0; round < 2; ++round) {  // the first call searches, the second uses the cache
      Tensor y_gpu = empty_on(dy.shape(), kCuda), dx_gpu = empty_on(x.shape(), kCuda);
      Tensor dw_gpu = empty_on(w.shape(), kCuda), db_gpu = empty_on({p.K}, kCuda);
      gpu().conv2d_fwd(p, y_gpu, x_gpu, w_gpu, bias_gpu);
      gpu().conv2d_bwd_data(p, dx_gpu, dy_gpu, w_gpu);
      gpu().conv2d_bwd_weight(p, dw_gpu, db_gpu, x_gpu, dy_gpu);
#ifdef KINDLING_WITH_CUDA
      MESSAGE(what << ": " << conv2d_algorithms(p));
#endif
      // 1e-4 of the norm admits any cuDNN algorithm's rounding (FFT is the loosest); a wrong index
      // or a missed term costs errors of order one.
      check_norm_close(y_gpu, y_cpu, 1e-4, what + " forward");
      check_norm_close(dx_gpu, dx_cpu, 1e-4, what + " data gradient");
      check_norm_close(dw_gpu, dw_cpu, 1e-4, what + " weight gradient");
      check_close(db_gpu, db_cpu, 1e-5, 1e-5, what + " bias gradient");  // our own kernel
    }
  }
}

TEST_CASE("cuda: max and average pooling forward and backward match the CPU") {
  SKIP_WITHOUT_GPU();
  Pool2dParams p{};
  p.N = 2, p.C = 3, p.H = 7, p.W = 6, p.R = 3, p.S = 3, p.stride_h = 2, p.stride_w = 2, p.pad_h = 1,
  p.pad_w = 1;
  p.P = (p.H + 2 * p.pad_h - p.R) / p.stride_h + 1;
  p.Q = (p.W + 2 * p.pad_w - p.S) / p.stride_w + 1;
  const Tensor x = uniform({p.N, p.C, p.H, p.W}, 19), dy = uniform({p.N, p.C, p.P, p.Q}, 20);
  const Tensor x_gpu = x.to(kCuda), dy_gpu = dy.to(kCuda);
  const Shape out_shape{p.N, p.C, p.P, p.Q};

  Tensor y_cpu = empty_on(out_shape, Device::cpu()), y_gpu = empty_on(out_shape, kCuda);
  Tensor idx_cpu = empty_on(out_shape, Device::cpu(), DType::i64),
         idx_gpu = empty_on(out_shape, kCuda, DType::i64);
  cpu_backend().max_pool2d_fwd(p, y_cpu, idx_cpu, x);
  gpu().max_pool2d_fwd(p, y_gpu, idx_gpu, x_gpu);
  check_close(y_gpu, y_cpu, 0, 0, "max pool");
  check_equal_i64(idx_gpu, idx_cpu, "max pool indices");
  Tensor dx_cpu = empty_on(x.shape(), Device::cpu()), dx_gpu = empty_on(x.shape(), kCuda);
  cpu_backend().max_pool2d_bwd(p, dx_cpu, dy, idx_cpu);
  gpu().max_pool2d_bwd(p, dx_gpu, dy_gpu, idx_gpu);
  check_close(dx_gpu, dx_cpu, 1e-6, 1e-7, "max pool backward");

  for (const bool include_pad : {true, false}) {
    p.count_include_pad = include_pad;
    const std::string what = include_pad ? "avg pool (padding counted)" : "avg pool (padding not counted)";
    cpu_backend().avg_pool2d_fwd(p, y_cpu, x);
    gpu().avg_pool2d_fwd(p, y_gpu, x_gpu);
    check_close(y_gpu, y_cpu, 1e-6, 1e-7, what);
    cpu_backend().avg_pool2d_bwd(p, dx_cpu, dy);
    gpu().avg_pool2d_bwd(p, dx_gpu, dy_gpu);
    check_close(dx_gpu, dx_cpu, 1e-6, 1e-7, what + " backward");
  }
}

TEST_CASE("cuda: batch norm training, evaluation and backward match the CPU") {
  SKIP_WITHOUT_GPU();
  const int64_t C = 3;
  const Tensor x = uniform({4, C, 5, 5}, 21, -1.0, 3.0), dy = uniform({4, C, 5, 5}, 22);
  const Tensor weight = uniform({C}, 23, 0.5, 1.5), bias = uniform({C}, 24);
  const Tensor x_gpu = x.to(kCuda), dy_gpu = dy.to(kCuda), weight_gpu = weight.to(kCuda),
               bias_gpu = bias.to(kCuda);
  for (const bool affine : {true, false}) {
    const std::string what = affine ? "batch norm" : "batch norm without weight and bias";
    const Tensor w_cpu = affine ? weight : Tensor(), b_cpu = affine ? bias : Tensor();
    const Tensor w_gpu = affine ? weight_gpu : Tensor(), b_gpu = affine ? bias_gpu : Tensor();
    Tensor rm_cpu = uniform({C}, 25), rv_cpu = uniform({C}, 26, 0.5, 2.0);
    Tensor rm_gpu = rm_cpu.to(kCuda), rv_gpu = rv_cpu.to(kCuda);
    Tensor y_cpu = empty_on(x.shape(), Device::cpu()), y_gpu = empty_on(x.shape(), kCuda);
    Tensor mean_cpu = empty_on({C}, Device::cpu()), invstd_cpu = empty_on({C}, Device::cpu());
    Tensor mean_gpu = empty_on({C}, kCuda), invstd_gpu = empty_on({C}, kCuda);
    cpu_backend().batch_norm_fwd_train(y_cpu, mean_cpu, invstd_cpu, rm_cpu, rv_cpu, x, w_cpu, b_cpu, 0.1f,
                                       1e-5f);
    gpu().batch_norm_fwd_train(y_gpu, mean_gpu, invstd_gpu, rm_gpu, rv_gpu, x_gpu, w_gpu, b_gpu, 0.1f, 1e-5f);
    check_close(y_gpu, y_cpu, 1e-5, 1e-5, what + " output");
    check_close(mean_gpu, mean_cpu, 1e-5, 1e-6, what + " saved mean");
    check_close(invstd_gpu, invstd_cpu, 1e-5, 1e-6, what + " saved invstd");
    check_close(rm_gpu, rm_cpu, 1e-5, 1e-6, what + " running mean");
    check_close(rv_gpu, rv_cpu, 1e-5, 1e-6, what + " running var");

    Tensor dx_cpu = empty_on(x.shape(), Device::cpu()), dx_gpu = empty_on(x.shape(), kCuda);
    Tensor dw_cpu = affine ? empty_on({C}, Device::cpu()) : Tensor(),
           db_cpu = affine ? empty_on({C}, Device::cpu()) : Tensor();
    Tensor dw_gpu = affine ? empty_on({C}, kCuda) : Tensor(),
           db_gpu = affine ? empty_on({C}, kCuda) : Tensor();
    cpu_backend().batch_norm_bwd(dx_cpu, dw_cpu, db_cpu, dy, x, w_cpu, mean_cpu, invstd_cpu);
    gpu().batch_norm_bwd(dx_gpu, dw_gpu, db_gpu, dy_gpu, x_gpu, w_gpu, mean_gpu, invstd_gpu);
    check_close(dx_gpu, dx_cpu, 1e-4, 1e-5, what + " input gradient");
    if (affine) {
      check_close(dw_gpu, dw_cpu, 1e-5, 1e-5, what + " weight gradient");
      check_close(db_gpu, db_cpu, 1e-5, 1e-5, what + " bias gradient");
    }

    cpu_backend().batch_norm_fwd_eval(y_cpu, x, w_cpu, b_cpu, rm_cpu, rv_cpu, 1e-5f);
    gpu().batch_norm_fwd_eval(y_gpu, x_gpu, w_gpu, b_gpu, rm_gpu, rv_gpu, 1e-5f);
    check_close(y_gpu, y_cpu, 1e-5, 1e-6, what + " evaluation");
  }
}

TEST_CASE("cuda: a max-pool window of NaNs and a large-mean batch norm give the CPU's answers") {
  SKIP_WITHOUT_GPU();
  const Tensor x = from_vector(std::vector<float>{NAN, 1, NAN, 0}, {1, 1, 2, 2});
  const Tensor dy = from_vector(std::vector<float>{1}, {1, 1, 1, 1});
  Tensor x_cpu = x.detach().set_requires_grad(true), x_gpu = x.to(kCuda).set_requires_grad(true);
  max_pool2d(x_cpu, 2).backward(dy);
  max_pool2d(x_gpu, 2).backward(dy.to(kCuda));
  CHECK(x_gpu.grad().to(Device::cpu()).to_vector<float>() == std::vector<float>{0, 0, 1, 0});
  CHECK(x_cpu.grad().to_vector<float>() == std::vector<float>{0, 0, 1, 0});
  const Tensor big = from_vector(std::vector<float>{9999.95508f, 9999.95117f}, {2, 1, 1, 1});
  const Tensor y_cpu = batch_norm(big, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  const Tensor y_gpu = batch_norm(big.to(kCuda), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  check_close(y_gpu, y_cpu, 1e-6, 1e-6, "batch norm of a large-mean channel");
}

TEST_CASE("cuda: the dropout mask is the CPU's, element for element") {
  SKIP_WITHOUT_GPU();
  Tensor mask_cpu = empty_on({37, 29}, Device::cpu()), mask_gpu = empty_on({37, 29}, kCuda);
  cpu_backend().dropout_mask(mask_cpu, 0.3f, 42, 1000);
  gpu().dropout_mask(mask_gpu, 0.3f, 42, 1000);
  check_close(mask_gpu, mask_cpu, 0, 0, "dropout mask");
  const std::vector<float> mask = mask_gpu.to_vector<float>();
  int64_t kept = 0;
  for (float m : mask) kept += m != 0.0f;
  CHECK(kept > 600);  // about 70 % of 1073
  CHECK(kept < 900);
}

// Both backends compile their optimizer steps without FMA contraction (CMakeLists.txt), so the same
// float operations in the same order give the same bits; tests/test_optim_kernels.cpp checks the CPU's
// rounding.
TEST_CASE("cuda: fused SGD and AdamW steps equal the CPU's bit for bit") {
  SKIP_WITHOUT_GPU();
  const Tensor param = uniform({1000}, 27), grad = uniform({1000}, 28);
  for (const bool nesterov : {false, true}) {
    Tensor p_cpu = param.clone(), buf_cpu = zeros({1000});
    Tensor p_gpu = param.to(kCuda), buf_gpu = zeros({1000}, TensorOptions{}.with_device(kCuda));
    const Tensor grad_gpu = grad.to(kCuda);
    SgdArgs args;
    args.lr = 0.1f, args.momentum = 0.9f, args.dampening = nesterov ? 0.0f : 0.1f, args.weight_decay = 5e-4f;
    args.nesterov = nesterov;
    for (int step = 0; step < 3; ++step) {
      args.first_step = step == 0;
      cpu_backend().sgd_step(p_cpu, grad, buf_cpu, args);
      gpu().sgd_step(p_gpu, grad_gpu, buf_gpu, args);
    }
    check_close(p_gpu, p_cpu, 0, 0, nesterov ? "sgd nesterov parameter" : "sgd parameter");
    check_close(buf_gpu, buf_cpu, 0, 0, "sgd momentum buffer");
  }
  Tensor p_cpu = param.clone(), m_cpu = zeros({1000}), v_cpu = zeros({1000});
  Tensor p_gpu = param.to(kCuda), m_gpu = m_cpu.to(kCuda), v_gpu = v_cpu.to(kCuda);
  const Tensor grad_gpu = grad.to(kCuda);
  AdamWArgs args;
  args.lr = 1e-2f;
  for (int64_t step = 1; step <= 3; ++step) {
    args.step = step;
    cpu_backend().adamw_step(p_cpu, grad, m_cpu, v_cpu, args);
    gpu().adamw_step(p_gpu, grad_gpu, m_gpu, v_gpu, args);
  }
  check_close(p_gpu, p_cpu, 0, 0, "adamw parameter");
  check_close(m_gpu, m_cpu, 0, 0, "adamw first moment");
  check_close(v_gpu, v_cpu, 0, 0, "adamw second moment");
}

TEST_CASE("cuda: the loss kernel matches the CPU and reports a bad label or logit at the next sync") {
  SKIP_WITHOUT_GPU();
  const Tensor logits = uniform({6, 10}, 29, -4.0, 4.0);
  const Tensor labels = from_vector<int64_t>({3, 0, 9, 9, 1, 5}, {6});
  const Tensor logits_gpu = logits.to(kCuda), labels_gpu = labels.to(kCuda);
  LossDesc ce;
  ce.kind = LossKind::ce;
  ce.reduction = Reduction::none;
  Tensor loss_cpu = empty_on({6}, Device::cpu()), grad_cpu = empty_on({6, 10}, Device::cpu());
  Tensor loss_gpu = empty_on({6}, kCuda), grad_gpu = empty_on({6, 10}, kCuda);
  loss_rows(ce, loss_cpu, grad_cpu, logits, labels);
  loss_rows(ce, loss_gpu, grad_gpu, logits_gpu, labels_gpu);
  check_close(loss_gpu, loss_cpu, 1e-5, 1e-6, "ce row losses");
  check_close(grad_gpu, grad_cpu, 1e-5, 1e-6, "ce gradient");
  ce.reduction = Reduction::mean;  // the scalar mean and the gradient divided by N
  Tensor mean_cpu = empty_on({}, Device::cpu()), mean_gpu = empty_on({}, kCuda);
  loss_rows(ce, mean_cpu, grad_cpu, logits, labels);
  loss_rows(ce, mean_gpu, grad_gpu, logits_gpu, labels_gpu);
  check_close(mean_gpu, mean_cpu, 1e-5, 1e-6, "ce mean");
  check_close(grad_gpu, grad_cpu, 1e-5, 1e-6, "ce gradient of the mean");

  // Near q = 1 the true class's gradient is -(1 - q), about -1.9e-8 here: p_y - 1 in float is 0.
  std::vector<float> confident(10, 0.0f);
  confident[3] = 20.0f;
  const Tensor sure = from_vector(confident, {1, 10});
  const Tensor label3 = from_vector<int64_t>({3}, {1});
  ce.reduction = Reduction::none;
  Tensor sure_loss_cpu = empty_on({1}, Device::cpu()), sure_grad_cpu = empty_on({1, 10}, Device::cpu());
  Tensor sure_loss_gpu = empty_on({1}, kCuda), sure_grad_gpu = empty_on({1, 10}, kCuda);
  loss_rows(ce, sure_loss_cpu, sure_grad_cpu, sure, label3);
  loss_rows(ce, sure_loss_gpu, sure_grad_gpu, sure.to(kCuda), label3.to(kCuda));
  const double true_class_cpu = sure_grad_cpu.to_vector<float>()[3];
  const double true_class_gpu = sure_grad_gpu.to_vector<float>()[3];
  CHECK(true_class_cpu < -1e-8);
  CHECK(std::fabs(true_class_gpu - true_class_cpu) <= 1e-5 * std::fabs(true_class_cpu));
  check_close(sure_loss_gpu, sure_loss_cpu, 1e-5, 1e-7, "ce loss of a confident row");

  // Bad input is found on the device and thrown at the next synchronisation, naming the row and
  // value; labels are checked before logits, as on the CPU; once reported, the next call is clean.
  ce.reduction = Reduction::mean;
  std::vector<float> values = logits.to_vector<float>();
  values[2 * 10 + 4] = NAN;
  values[4 * 10 + 7] = INFINITY;
  const Tensor bad = from_vector(values, {6, 10}, TensorOptions{}.with_device(kCuda));
  CHECK_NOTHROW(loss_rows(ce, mean_gpu, Tensor(), bad, labels_gpu));
  CHECK_THROWS_WITH_AS(gpu().synchronize(),
                       "loss ce: logits row 2 holds a non-finite value (nan at column 4)", ValueError);
  CHECK_NOTHROW(gpu().synchronize());
  const Tensor bad_labels = from_vector<int64_t>({3, 0, 9, 12, 1, -1}, {6}).to(kCuda);
  loss_rows(ce, mean_gpu, grad_gpu, bad, bad_labels);
  CHECK_THROWS_WITH_AS((void)mean_gpu.item<float>(),
                       "loss ce: labels[3] = 12 is outside [0, 10) for logits f32[6,10] on cuda", ValueError);
  CHECK(std::isnan(mean_gpu.item<float>()));  // the bad rows made the mean NaN
  loss_rows(ce, mean_gpu, grad_gpu, logits_gpu, labels_gpu);
  check_close(mean_gpu, mean_cpu, 1e-5, 1e-6, "ce mean after an error was reported");
}
