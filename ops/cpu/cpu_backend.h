// The CPU backend: convolutions as kindling's own register-tiled GEMMs over a lowered image
// (ops/cpu/conv.cpp), OpenBLAS for matmul and as the GEMM fallback, kindling's thread pool for the rest.
// Its methods are defined across ops/cpu/<stem>.cpp, one file per family, in the order of
// core/backend.h; ops/cuda/<stem>.cu holds the CUDA twins.
#pragma once
#include "core/backend.h"

namespace kindling {

class CpuBackend : public Backend {
 public:
  Device device() const override { return Device::cpu(); }
  Allocator& allocator() override { return cpu_allocator(); }
  std::string name() const override { return "cpu"; }
  void synchronize() override {}

  // memory.cpp
  void copy(const Tensor& dst, const Tensor& src) override;
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
  void fill(const Tensor& dst, double value) override;
  // elementwise.cpp
  void unary(UnaryOp op, const Tensor& out, const Tensor& in, float alpha, float beta) override;
  void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) override;
  void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) override;
  // reduce.cpp
  void reduce(ReduceOp op, const Tensor& out, const Tensor& in, int64_t outer, int64_t reduce,
              int64_t inner) override;
  // matmul.cpp
  void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
            int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta,
            float* C, int64_t ldc, int64_t stride_c, int64_t batch) override;
  // softmax.cpp
  void softmax_fwd(const Tensor& out, const Tensor& in, bool log) override;
  void softmax_bwd(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) override;
  void one_hot(const Tensor& out, const Tensor& labels) override;
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
  // dropout.cpp
  void dropout_mask(const Tensor& mask, float p, uint64_t seed, uint64_t offset) override;
  // optim.cpp
  void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                const SgdArgs& args) override;
  void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamWArgs& args) override;
};

}  // namespace kindling
