// The reference CPU kernels: each compute-heavy Backend method written as its definition in a few
// plain loops, single-threaded, accumulating in double. They are where a reader starts (before the
// register tiles and lowerings of ops/cpu/conv*.cpp), the oracle that the tests hold the fast
// kernels to, and selectable for a whole run: KINDLING_KERNELS=reference makes cpu_backend() this
// backend, so a run trains on these loops and gets the fast path's numbers, slower.
// Everything else (copies, elementwise, reductions, losses, optimizer steps) is CpuBackend's own.
#pragma once
#include "ops/cpu/cpu_backend.h"

namespace kindling {

class ReferenceCpuBackend final : public CpuBackend {
 public:
  std::string name() const override { return "cpu (reference kernels)"; }

  // matmul.cpp
  void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
            int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta,
            float* C, int64_t ldc, int64_t stride_c, int64_t batch) override;
  // softmax.cpp
  void softmax_fwd(const Tensor& out, const Tensor& in, bool log) override;
  void softmax_bwd(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) override;
  // conv.cpp
  void conv2d_fwd(const Conv2dParams& p, const Tensor& y, const Tensor& x, const Tensor& w,
                  const Tensor& bias) override;
  void conv2d_bwd_data(const Conv2dParams& p, const Tensor& dx, const Tensor& dy, const Tensor& w) override;
  void conv2d_bwd_weight(const Conv2dParams& p, const Tensor& dw, const Tensor& dbias, const Tensor& x,
                         const Tensor& dy) override;
  // pool.cpp
  void max_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& indices,
                      const Tensor& x) override;
  void max_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy,
                      const Tensor& indices) override;
  void avg_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& x) override;
  void avg_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy) override;
  // batchnorm.cpp
  void batch_norm_fwd_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                            const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                            const Tensor& weight, const Tensor& bias, float momentum, float eps) override;
  void batch_norm_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& running_mean, const Tensor& running_var, float eps) override;
  void batch_norm_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                      const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                      const Tensor& save_invstd) override;
  void batch_norm_relu_fwd_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                                 const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                                 const Tensor& weight, const Tensor& bias, const Tensor& residual,
                                 float momentum, float eps) override;
  void batch_norm_relu_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                const Tensor& residual, const Tensor& running_mean, const Tensor& running_var,
                                float eps) override;
  void batch_norm_relu_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                           const Tensor& dresidual, const Tensor& dy, const Tensor& y, const Tensor& x,
                           const Tensor& weight, const Tensor& save_mean, const Tensor& save_invstd) override;
};

// The one instance, whatever KINDLING_KERNELS says (the tests compare it with the fast kernels).
Backend& reference_cpu_backend();

}  // namespace kindling
