// Backend: the one place where the CPU and the GPU differ. Ops in ops/ check shapes, dtypes and
// devices, allocate outputs, and make one virtual call here; kernels live in ops/cpu/<stem>.cpp and
// ops/cuda/<stem>.cu, which define these methods in the same order. Every tensor passed in is on
// this backend's device. Unless a method says otherwise, inputs may be any strided view and outputs
// are contiguous, freshly allocated by the caller.
#pragma once
#include "core/allocator.h"
#include "core/tensor.h"

#include <cstdint>
#include <string>

namespace kindling {

enum class UnaryOp {
  Neg,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Abs,
  Sign,
  Relu,
  Sigmoid,
  Tanh,
  Sin,
  Cos,
  Square,
  Reciprocal,
  PowScalar,  // x^alpha
  Clamp,      // min(max(x, alpha), beta)
  Affine,     // alpha * x + beta
};

enum class BinaryOp {
  Add,
  Sub,
  Mul,
  Div,
  Pow,
  Maximum,
  Minimum,
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,            // 1.0f or 0.0f
  ReluBackward,  // a * (b > 0): gradient of relu given its output b
};

enum class ReduceOp { Sum, Mean, Max, Min, ArgMax, ArgMin, SumSquares };

// Convolution geometry: x [N,C,H,W], w [K,C/groups,R,S], y [N,K,P,Q] with
// P = (H + 2*pad_h - dil_h*(R-1) - 1) / stride_h + 1, and likewise Q.
struct Conv2dParams {
  int64_t N, C, H, W, K, R, S, P, Q;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};

// Pooling geometry: x [N,C,H,W] -> y [N,C,P,Q], window R×S.
struct Pool2dParams {
  int64_t N, C, H, W, P, Q, R, S;
  int64_t stride_h, stride_w, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avg pool: divide by R*S (true) or by the in-bounds count
};

// SGD as PyTorch couples it: g = grad + wd*p; buf = momentum*buf + (1-dampening)*g (buf = g on the
// first step); g = nesterov ? g + momentum*buf : buf; p -= lr*g.
struct SgdArgs {
  float lr, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = true;
};
// AdamW: p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²;
// p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
struct AdamWArgs {
  float lr, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
  int64_t step = 1;  // t, starting at 1
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual Allocator& allocator() = 0;
  virtual std::string name() const = 0;
  virtual void synchronize() = 0;

  // ---- memory (ops/<dev>/memory) ----
  // dst and src have the same shape, any strides; dtypes may differ (converting copy).
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
  // dst: any strides, any dtype.
  virtual void fill(const Tensor& dst, double value) = 0;

  // ---- elementwise (ops/<dev>/elementwise): f32; inputs broadcast (stride 0) to out's shape ----
  virtual void unary(UnaryOp op, const Tensor& out, const Tensor& in, float alpha, float beta) = 0;
  virtual void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // out = cond != 0 ? a : b
  virtual void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) = 0;

  // ---- reductions (ops/<dev>/reduce): in contiguous f32 viewed as [outer, reduce, inner] ->
  // out [outer, inner] contiguous, f32 (i64 for ArgMax/ArgMin). Sums accumulate in double on CPU.
  virtual void reduce(ReduceOp op, const Tensor& out, const Tensor& in, int64_t outer, int64_t reduce,
                      int64_t inner) = 0;

  // ---- matmul (ops/<dev>/matmul): column-major-free, row-major BLAS semantics:
  // C[b] = alpha * op(A[b]) · op(B[b]) + beta * C[b], op(A) [M,K], op(B) [K,N], C [M,N],
  // leading dimensions and batch strides in elements, raw device pointers to f32.
  virtual void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                    int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta,
                    float* C, int64_t ldc, int64_t stride_c, int64_t batch) = 0;

  // ---- softmax (ops/<dev>/softmax): contiguous [rows, C], over the last dim ----
  virtual void softmax_fwd(const Tensor& out, const Tensor& in, bool log) = 0;
  // grad_in = log ? g - exp(out)*sum(g) : out*(g - sum(g*out))
  virtual void softmax_bwd(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) = 0;
  // out [N, C] f32 = one_hot(labels [N] i64); labels already range-checked.
  virtual void one_hot(const Tensor& out, const Tensor& labels) = 0;

  // ---- convolution (ops/<dev>/conv): contiguous f32 NCHW ----
  virtual void conv2d_fwd(const Conv2dParams& p, const Tensor& y, const Tensor& x, const Tensor& w,
                          const Tensor& bias /* may be undefined */) = 0;
  virtual void conv2d_bwd_data(const Conv2dParams& p, const Tensor& dx, const Tensor& dy,
                               const Tensor& w) = 0;
  // dw overwritten; dbias (may be undefined) overwritten with sum over n,p,q of dy.
  virtual void conv2d_bwd_weight(const Conv2dParams& p, const Tensor& dw, const Tensor& dbias,
                                 const Tensor& x, const Tensor& dy) = 0;

  // ---- pooling (ops/<dev>/pool): contiguous f32 NCHW; indices i64 into each H*W plane ----
  virtual void max_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& indices,
                              const Tensor& x) = 0;
  virtual void max_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy,
                              const Tensor& indices) = 0;
  virtual void avg_pool2d_fwd(const Pool2dParams& p, const Tensor& y, const Tensor& x) = 0;
  virtual void avg_pool2d_bwd(const Pool2dParams& p, const Tensor& dx, const Tensor& dy) = 0;

  // ---- batch norm (ops/<dev>/batchnorm): x, y [N,C,H,W] contiguous; per-channel tensors [C] ----
  // Training: batch statistics (accumulated in double on CPU); save_mean, save_invstd [C] are
  // written for backward; running_mean/var (may be undefined) updated in place by momentum with
  // the unbiased variance, as PyTorch does.
  virtual void batch_norm_fwd_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                                    const Tensor& running_mean, const Tensor& running_var, const Tensor& x,
                                    const Tensor& weight, const Tensor& bias, float momentum, float eps) = 0;
  virtual void batch_norm_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                   const Tensor& running_mean, const Tensor& running_var, float eps) = 0;
  // dx, dweight, dbias overwritten (dweight/dbias may be undefined); training-mode formula.
  virtual void batch_norm_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                              const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                              const Tensor& save_invstd) = 0;
  // Fused with a residual add and a ReLU: y = max(0, batch_norm(x) + residual), residual
  // (contiguous like x, may be undefined: 0) added to the normalised value as batch_norm's output
  // would be, then ReLU as relu() computes it (NaN becomes 0). Same statistics and running-stat
  // update as the unfused methods.
  virtual void batch_norm_relu_fwd_train(const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd,
                                         const Tensor& running_mean, const Tensor& running_var,
                                         const Tensor& x, const Tensor& weight, const Tensor& bias,
                                         const Tensor& residual, float momentum, float eps) = 0;
  virtual void batch_norm_relu_fwd_eval(const Tensor& y, const Tensor& x, const Tensor& weight,
                                        const Tensor& bias, const Tensor& residual,
                                        const Tensor& running_mean, const Tensor& running_var, float eps) = 0;
  // Training-mode gradients of the fused op from dy and its output y: g = dy where y > 0, else 0,
  // goes through batch_norm_bwd's formula, and dresidual = g. dx, dweight, dbias, dresidual may
  // each be undefined (not wanted).
  virtual void batch_norm_relu_bwd(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                                   const Tensor& dresidual, const Tensor& dy, const Tensor& y,
                                   const Tensor& x, const Tensor& weight, const Tensor& save_mean,
                                   const Tensor& save_invstd) = 0;

  // ---- dropout (ops/<dev>/dropout): mask f32 = (bits_to_unit_float(random_bits(seed, offset+i))
  // >= p) / (1-p), the same on every device ----
  virtual void dropout_mask(const Tensor& mask, float p, uint64_t seed, uint64_t offset) = 0;

  // ---- optimizers (ops/<dev>/optim): one fused update per parameter, all contiguous f32 ----
  virtual void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                        const SgdArgs& args) = 0;
  virtual void adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                          const Tensor& exp_avg_sq, const AdamWArgs& args) = 0;
};

// The backend of a device. CUDA throws DeviceError when kindling was built without CUDA or no GPU
// is present; the message says why (cuda_unavailable_reason()).
Backend& backend(Device device);
Backend& cpu_backend();
// True when built with CUDA and the CUDA backend started on a visible GPU. With KINDLING_REQUIRE_CUDA
// set (to anything but empty or 0) a missing GPU is an error rather than a reason to skip: false is
// never returned, DeviceError is thrown with cuda_unavailable_reason(). Tests and `kindling bench
// --device all` ask this before they skip their CUDA part, so the variable turns every such skip
// into a failure that names CUDA's error.
bool cuda_available();
// Why cuda_available() is false: "built without CUDA", "no CUDA driver is installed (...)", "no
// CUDA device (...)", or the CUDA error that stopped discovery or start-up, with CUDA's error name
// and string. Empty when a GPU is available.
std::string cuda_unavailable_reason();
// Whether KINDLING_REQUIRE_CUDA asks for a GPU.
bool cuda_required();
// GPUs the CUDA runtime sees: 0 when built without CUDA, when no CUDA driver is installed, or when
// the driver reports no device. Any other failure of cudaGetDeviceCount (a driver older than the
// toolkit, a driver that cannot start) throws DeviceError with CUDA's error name and string rather
// than reading as 0.
int cuda_device_count();

// ---- How backends join. Core names no backend: ops/backends.cpp registers the CPU backend and,
// in a CUDA build, the CUDA one, while the program starts; backend() makes each on first use. ----
struct BackendProvider {
  // The backend, or null with the reason in `why_not` when its device is absent. Called once.
  Backend* (*make)(std::string& why_not) = nullptr;
  // Devices of this type that are present (see cuda_device_count).
  int (*device_count)() = nullptr;
};
// Makes `provider` the source of `type`'s backend; a second registration of a type is an error.
void register_backend(DeviceType type, BackendProvider provider);

}  // namespace kindling
