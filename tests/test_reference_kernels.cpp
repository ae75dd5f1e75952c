// The fast CPU kernels (ops/cpu) against the reference kernels (ops/cpu/reference), method by
// method, on shapes that reach the fast paths' tiles, tails and thread splits. Convolution is
// covered by test_conv, which uses the reference kernels as its oracle.
#include "core/rng.h"
#include "ops/cpu/reference/reference_backend.h"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <vector>

using namespace kindling;

namespace {

CpuBackend fast_kernels;
Backend& reference = reference_cpu_backend();

// max |a - b| / max(1, max |b|)
double relative_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  REQUIRE(x.size() == y.size());
  double worst = 0, scale = 1;
  for (size_t i = 0; i < x.size(); ++i) {
    worst = std::max(worst, std::fabs(double(x[i]) - y[i]));
    scale = std::max(scale, std::fabs(double(y[i])));
  }
  return worst / scale;
}

}  // namespace

TEST_CASE("gemm: every transpose, beta 0 and 1, batched, ragged sizes") {
  Generator gen(3);
  for (const auto& [M, N, K] : {std::array<int64_t, 3>{1, 1, 1}, {7, 5, 3}, {33, 17, 65}, {64, 128, 27}}) {
    for (int trans = 0; trans < 4; ++trans) {
      const bool ta = trans & 1, tb = trans & 2;
      const int64_t batch = 2;
      Tensor a = randn({batch, M * K}, {}, &gen), b = randn({batch, K * N}, {}, &gen);
      Tensor c0 = randn({batch, M * N}, {}, &gen);
      for (float beta : {0.0f, 1.0f}) {
        Tensor want = c0.clone(), got = c0.clone();
        const int64_t lda = ta ? M : K, ldb = tb ? K : N;
        reference.gemm(ta, tb, M, N, K, 0.5f, a.data<float>(), lda, M * K, b.data<float>(), ldb, K * N, beta,
                       want.data<float>(), N, M * N, batch);
        fast_kernels.gemm(ta, tb, M, N, K, 0.5f, a.data<float>(), lda, M * K, b.data<float>(), ldb, K * N,
                          beta, got.data<float>(), N, M * N, batch);
        INFO("M ", M, " N ", N, " K ", K, " trans ", trans, " beta ", beta);
        CHECK(relative_diff(got, want) < 1e-5);
      }
    }
  }
}

TEST_CASE("softmax and log-softmax, forward and backward") {
  Generator gen(4);
  for (const auto& [rows, C] : {std::pair<int64_t, int64_t>{1, 1}, {5, 10}, {37, 1000}}) {
    Tensor x = randn({rows, C}, {}, &gen).mul_(4.0), g = randn({rows, C}, {}, &gen);
    for (bool log : {false, true}) {
      Tensor want = empty({rows, C}), got = empty({rows, C});
      reference.softmax_fwd(want, x, log);
      fast_kernels.softmax_fwd(got, x, log);
      CHECK(relative_diff(got, want) < 1e-5);
      Tensor want_grad = empty({rows, C}), got_grad = empty({rows, C});
      reference.softmax_bwd(want_grad, g, want, log);
      fast_kernels.softmax_bwd(got_grad, g, want, log);
      INFO("rows ", rows, " C ", C, " log ", log);
      CHECK(relative_diff(got_grad, want_grad) < 1e-5);
    }
  }
}

TEST_CASE("max and average pooling with padding, strides and both divisors") {
  Generator gen(5);
  const Pool2dParams cases[] = {
      {2, 3, 8, 8, 4, 4, 2, 2, 2, 2, 0, 0, true},
      {1, 2, 7, 9, 4, 5, 3, 3, 2, 2, 1, 1, true},
      {1, 2, 7, 9, 4, 5, 3, 3, 2, 2, 1, 1, false},
      {2, 1, 5, 5, 5, 5, 3, 3, 1, 1, 1, 1, false},
  };
  for (const Pool2dParams& p : cases) {
    Tensor x = randn({p.N, p.C, p.H, p.W}, {}, &gen), dy = randn({p.N, p.C, p.P, p.Q}, {}, &gen);
    // Two NaNs in the first windows: both kernels take the last one (PyTorch's rule).
    x.data<float>()[0] = x.data<float>()[1] = std::nanf("");
    Tensor want = empty({p.N, p.C, p.P, p.Q}), got = empty({p.N, p.C, p.P, p.Q});
    Tensor want_index = empty({p.N, p.C, p.P, p.Q}, {DType::i64}), got_index = empty_like(want_index);
    reference.max_pool2d_fwd(p, want, want_index, x);
    fast_kernels.max_pool2d_fwd(p, got, got_index, x);
    const std::vector<float> got_values = got.to_vector<float>(), want_values = want.to_vector<float>();
    for (size_t i = 0; i < want_values.size(); ++i)
      CHECK((got_values[i] == want_values[i] || (std::isnan(got_values[i]) && std::isnan(want_values[i]))));
    CHECK(got_index.to_vector<int64_t>() == want_index.to_vector<int64_t>());
    Tensor want_dx = empty(x.shape()), got_dx = empty(x.shape());
    reference.max_pool2d_bwd(p, want_dx, dy, want_index);
    fast_kernels.max_pool2d_bwd(p, got_dx, dy, want_index);
    CHECK(relative_diff(got_dx, want_dx) < 1e-6);
    x.data<float>()[0] = x.data<float>()[1] = 0.5f;
    reference.avg_pool2d_fwd(p, want, x);
    fast_kernels.avg_pool2d_fwd(p, got, x);
    INFO("H ", p.H, " W ", p.W, " window ", p.R, " stride ", p.stride_h, " pad ", p.pad_h);
    CHECK(relative_diff(got, want) < 1e-6);
    reference.avg_pool2d_bwd(p, want_dx, dy);
    fast_kernels.avg_pool2d_bwd(p, got_dx, dy);
    CHECK(relative_diff(got_dx, want_dx) < 1e-6);
  }
}

TEST_CASE("batch norm: training statistics and running updates, evaluation, backward") {
  Generator gen(6);
  const int64_t N = 3, C = 5, H = 6, W = 7;
  Tensor x = randn({N, C, H, W}, {}, &gen), dy = randn({N, C, H, W}, {}, &gen);
  x.add_(ones(x.shape()), 2.0);  // a mean away from zero
  Tensor weight = randn({C}, {}, &gen), bias = randn({C}, {}, &gen);
  for (bool affine : {true, false}) {
    const Tensor w = affine ? weight : Tensor(), b = affine ? bias : Tensor();
    Tensor want = empty(x.shape()), got = empty(x.shape());
    Tensor want_mean = empty({C}), want_invstd = empty({C}), got_mean = empty({C}), got_invstd = empty({C});
    Tensor want_running_mean = zeros({C}), want_running_var = ones({C});
    Tensor got_running_mean = zeros({C}), got_running_var = ones({C});
    reference.batch_norm_fwd_train(want, want_mean, want_invstd, want_running_mean, want_running_var, x, w, b,
                                   0.1f, 1e-5f);
    fast_kernels.batch_norm_fwd_train(got, got_mean, got_invstd, got_running_mean, got_running_var, x, w, b,
                                      0.1f, 1e-5f);
    INFO("affine ", affine);
    CHECK(relative_diff(got, want) < 1e-5);
    CHECK(relative_diff(got_mean, want_mean) < 1e-6);
    CHECK(relative_diff(got_invstd, want_invstd) < 1e-5);
    CHECK(relative_diff(got_running_mean, want_running_mean) < 1e-6);
    CHECK(relative_diff(got_running_var, want_running_var) < 1e-5);
    reference.batch_norm_fwd_eval(want, x, w, b, want_running_mean, want_running_var, 1e-5f);
    fast_kernels.batch_norm_fwd_eval(got, x, w, b, want_running_mean, want_running_var, 1e-5f);
    CHECK(relative_diff(got, want) < 1e-5);
    Tensor want_dx = empty(x.shape()), got_dx = empty(x.shape());
    Tensor want_dw = empty({C}), want_db = empty({C}), got_dw = empty({C}), got_db = empty({C});
    reference.batch_norm_bwd(want_dx, want_dw, want_db, dy, x, w, want_mean, want_invstd);
    fast_kernels.batch_norm_bwd(got_dx, got_dw, got_db, dy, x, w, want_mean, want_invstd);
    CHECK(relative_diff(got_dx, want_dx) < 1e-5);
    CHECK(relative_diff(got_dw, want_dw) < 1e-5);
    CHECK(relative_diff(got_db, want_db) < 1e-5);
  }
}
