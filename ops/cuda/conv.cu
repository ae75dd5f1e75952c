// CUDA convolution through cuDNN. Each geometry (with the determinism and TF32 settings) gets its
// descriptors and, per direction, an algorithm chosen once by cudnnFind*AlgorithmEx (cuDNN times
// every algorithm on our tensors) and cached. The search runs in a large one-off workspace; the
// chosen algorithm's workspace, as cuDNN sizes it for the math type that will run, comes from the
// caching allocator on every call. A batch size not seen before (the last, smaller batch of an
// epoch; an evaluation batch) reuses the algorithm chosen for the same geometry at another batch
// size, with the workspace cuDNN reports for the new shape, rather than searching again. Bias and
// its gradient are our own kernels (a broadcast add, and channel_sums with no atomics).
#include "ops/cuda/channel_reduce.cuh"
#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"

#include <array>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace kindling {
namespace {

int to_int(const char* op, const char* what, int64_t value) {
  KINDLING_CHECK(value >= 0 && value <= INT_MAX, ShapeError, "{} on CUDA: {} = {} exceeds cuDNN's int", op,
                 what, value);
  return int(value);
}

struct ConvDescriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit ConvDescriptors(const Conv2dParams& p) {
    const char* op = "conv2d";
    KINDLING_CUDA_CHECK(cudnnCreateTensorDescriptor(&x));
    KINDLING_CUDA_CHECK(cudnnCreateTensorDescriptor(&y));
    KINDLING_CUDA_CHECK(cudnnCreateFilterDescriptor(&w));
    KINDLING_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    KINDLING_CUDA_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                                   to_int(op, "N", p.N), to_int(op, "C", p.C),
                                                   to_int(op, "H", p.H), to_int(op, "W", p.W)));
    KINDLING_CUDA_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(p.N),
                                                   to_int(op, "K", p.K), to_int(op, "P", p.P),
                                                   to_int(op, "Q", p.Q)));
    KINDLING_CUDA_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(p.K),
                                                   to_int(op, "C/groups", p.C / p.groups),
                                                   to_int(op, "R", p.R), to_int(op, "S", p.S)));
    KINDLING_CUDA_CHECK(cudnnSetConvolution2dDescriptor(
        conv, to_int(op, "pad_h", p.pad_h), to_int(op, "pad_w", p.pad_w), to_int(op, "stride_h", p.stride_h),
        to_int(op, "stride_w", p.stride_w), to_int(op, "dil_h", p.dil_h), to_int(op, "dil_w", p.dil_w),
        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    KINDLING_CUDA_CHECK(cudnnSetConvolutionGroupCount(conv, to_int(op, "groups", p.groups)));
    int n = 0, k = 0, out_h = 0, out_w = 0;
    KINDLING_CUDA_CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &k, &out_h, &out_w));
    KINDLING_CHECK(
        n == p.N && k == p.K && out_h == p.P && out_w == p.Q, ShapeError,
        "conv2d on CUDA: cuDNN computes an output of [{},{},{},{}] where the op expects [{},{},{},{}]", n, k,
        out_h, out_w, p.N, p.K, p.P, p.Q);
  }
  ~ConvDescriptors() {  // destructors do not throw: statuses are ignored here
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;
};

enum Direction { kForward, kBackwardData, kBackwardFilter };
const char* const kDirectionNames[] = {"forward", "backward data", "backward filter"};

struct Algo {
  bool chosen = false;
  int algo = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace = 0;
};

struct ConvPlan {
  explicit ConvPlan(const Conv2dParams& p) : desc(p) {}
  ConvDescriptors desc;
  std::array<Algo, 3> algo;  // by Direction
};

// The batch size, the rest of the geometry, then the determinism and TF32 switches. With N = 0 it
// keys what all batch sizes of one geometry share.
using PlanKey = std::array<int64_t, 18>;
PlanKey plan_key(const Conv2dParams& p, int64_t N) {
  return {N,
          p.C,
          p.H,
          p.W,
          p.K,
          p.R,
          p.S,
          p.P,
          p.Q,
          p.stride_h,
          p.stride_w,
          p.pad_h,
          p.pad_w,
          p.dil_h,
          p.dil_w,
          p.groups,
          cuda::deterministic(),
          cuda::allow_tf32()};
}

std::mutex plans_mutex;
// Per shape: descriptors and chosen algorithms. Per shape less the batch size: the algorithms
// chosen for it at the first batch size searched, which other batch sizes reuse.
auto* plans = new std::map<PlanKey, std::unique_ptr<ConvPlan>>();  // lives as long as the handles
auto* choices = new std::map<PlanKey, std::array<Algo, 3>>();

ConvPlan& plan_for(const Conv2dParams& p) {
  std::lock_guard lock(plans_mutex);
  auto& plan = (*plans)[plan_key(p, p.N)];
  if (!plan) plan = std::make_unique<ConvPlan>(p);
  return *plan;
}

// The math type searches run under: every Find starts from it, whatever the last call ran with.
cudnnMathType_t search_math() { return cuda::allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }

// The workspace cuDNN needs to run `algo` in `direction` on these descriptors under `math`;
// nothing when cuDNN does not support that combination. Leaves the descriptor at `math`.
std::optional<size_t> workspace_for(Direction direction, const ConvDescriptors& d, int algo,
                                    cudnnMathType_t math) {
  KINDLING_CUDA_CHECK(cudnnSetConvolutionMathType(d.conv, math));
  size_t bytes = 0;
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  if (direction == kForward)
    status = cudnnGetConvolutionForwardWorkspaceSize(cuda::cudnn(), d.x, d.w, d.conv, d.y,
                                                     cudnnConvolutionFwdAlgo_t(algo), &bytes);
  else if (direction == kBackwardData)
    status = cudnnGetConvolutionBackwardDataWorkspaceSize(cuda::cudnn(), d.w, d.y, d.conv, d.x,
                                                          cudnnConvolutionBwdDataAlgo_t(algo), &bytes);
  else
    status = cudnnGetConvolutionBackwardFilterWorkspaceSize(cuda::cudnn(), d.x, d.y, d.conv, d.w,
                                                            cudnnConvolutionBwdFilterAlgo_t(algo), &bytes);
  if (status != CUDNN_STATUS_SUCCESS) return std::nullopt;
  return bytes;
}

// The one-off workspace the algorithm search runs in: as large as the device allows, up to 1 GiB,
// straight from cudaMalloc so the caching allocator does not keep it afterwards.
class SearchWorkspace {
 public:
  SearchWorkspace() {
    bool cache_emptied = false;
    for (size_t want = size_t(1) << 30; want >= (size_t(1) << 20);) {
      if (cudaMalloc(&ptr_, want) == cudaSuccess) {
        bytes_ = want;
        return;
      }
      (void)cudaGetLastError();
      ptr_ = nullptr;
      if (!cache_emptied) {  // blocks cached by the allocator may be what is missing
        cuda::device_allocator().empty_cache();
        cache_emptied = true;
      } else {
        want /= 2;
      }
    }
  }
  ~SearchWorkspace() {
    if (ptr_) cudaFree(ptr_);
  }
  SearchWorkspace(const SearchWorkspace&) = delete;
  SearchWorkspace& operator=(const SearchWorkspace&) = delete;
  void* get() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// The fastest algorithm (cuDNN sorts by time) that succeeded, fits the workspace and, when asked,
// is deterministic. Without TF32 it runs under CUDNN_FMA_MATH: an entry that cuDNN measured under
// another math type gets the workspace cuDNN reports for FMA math (or is passed over when cuDNN
// cannot run it so), never the size measured for the other.
template <typename Perf>
Algo pick(Direction direction, const Perf* perf, int count, size_t limit, const ConvDescriptors& d,
          const Conv2dParams& p) {
  const bool need_deterministic = cuda::deterministic();
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (need_deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    Algo algo;
    algo.algo = int(perf[i].algo);
    algo.math = cuda::allow_tf32() ? perf[i].mathType : CUDNN_FMA_MATH;
    std::optional<size_t> workspace = perf[i].memory;
    if (algo.math != perf[i].mathType) workspace = workspace_for(direction, d, algo.algo, algo.math);
    if (!workspace || *workspace > limit) continue;
    algo.workspace = *workspace;
    algo.chosen = true;
    return algo;
  }
  throw DeviceError(fmt::format(
      "conv2d {} on CUDA: cuDNN has no usable{} algorithm for x [{},{},{},{}], w [{},{},{},{}], "
      "stride {}x{}, pad {}x{}, dilation {}x{}, groups {} (workspace limit {} bytes)",
      kDirectionNames[direction], need_deterministic ? " deterministic" : "", p.N, p.C, p.H, p.W, p.K,
      p.C / p.groups, p.R, p.S, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.dil_h, p.dil_w, p.groups, limit));
}

// The algorithm of `direction` for this plan: cached; else the one chosen for the same geometry at
// another batch size, if cuDNN can run it on this shape within kReuseLimit; else a search.
// `search(workspace)` runs cudnnFind* in that workspace and returns pick()'s choice.
constexpr size_t kReuseLimit = size_t(1) << 30;  // the search workspace's own ceiling

template <typename Search>
const Algo& algorithm(Direction direction, ConvPlan& plan, const Conv2dParams& p, Search search) {
  Algo& slot = plan.algo[direction];
  if (slot.chosen) return slot;
  Algo sibling;
  {
    std::lock_guard lock(plans_mutex);
    const auto found = choices->find(plan_key(p, 0));
    if (found != choices->end()) sibling = found->second[direction];
  }
  if (sibling.chosen) {
    const std::optional<size_t> workspace = workspace_for(direction, plan.desc, sibling.algo, sibling.math);
    if (workspace && *workspace <= kReuseLimit) {
      slot = sibling;
      slot.workspace = *workspace;
      return slot;
    }
  }
  KINDLING_CUDA_CHECK(cudnnSetConvolutionMathType(plan.desc.conv, search_math()));
  SearchWorkspace workspace;
  slot = search(workspace);
  std::lock_guard lock(plans_mutex);
  Algo& shared = (*choices)[plan_key(p, 0)][direction];
  if (!shared.chosen) shared = slot;
  return slot;
}

// Runs `call(workspace pointer, bytes)` with the algorithm's math type set and its workspace.
template <typename Call>
void run_with(const ConvDescriptors& d, const Algo& algo, Call call) {
  cuda::DeviceBuffer workspace(algo.workspace);
  KINDLING_CUDA_CHECK(cudnnSetConvolutionMathType(d.conv, algo.math));
  call(workspace.get(), workspace.size());
}

// y[n,k,p,q] += bias[k]; y [N,K,PQ] contiguous, bias [K] with stride bias_stride.
__global__ void add_bias_kernel(float* y, const float* bias, int64_t bias_stride, int64_t K, int64_t PQ,
                                int64_t total) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] += bias[((i / PQ) % K) * bias_stride];
}

struct BiasGradTerm {
  const float* dy;
  __device__ double2 operator()(int64_t index, int64_t) const { return make_double2(double(dy[index]), 0.0); }
};
struct BiasGradFinish {
  float* dbias;
  __device__ void operator()(int64_t k, double2 sums) const { dbias[k] = float(sums.x); }
};

void check_conv_tensors(const char* op, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    KINDLING_CHECK(t->dtype() == DType::f32 && t->is_contiguous(), DTypeError,
                   "{} on CUDA: expected contiguous f32 tensors, got {}", op, t->describe());
}

constexpr float kOne = 1.0f, kZero = 0.0f;

}  // namespace

// x [N,C,H,W], w [K,C/G,R,S], bias [K] or undefined -> y [N,K,P,Q];
// y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*C/G + c, p*sh - ph + r*dh, q*sw - pw + s*dw] * w[k,c,r,s]
void CudaBackend::conv2d_fwd(const Conv2dParams& p, const Tensor& y, const Tensor& x, const Tensor& w,
                             const Tensor& bias) {
  check_conv_tensors("conv2d_fwd", {&y, &x, &w});
  if (y.numel() == 0) return;
  ConvPlan& plan = plan_for(p);
  const ConvDescriptors& d = plan.desc;
  const Algo& algo = algorithm(kForward, plan, p, [&](const SearchWorkspace& search) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    KINDLING_CUDA_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
        cuda::cudnn(), d.x, x.data<float>(), d.w, w.data<float>(), d.conv, d.y, y.data<float>(),
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, search.get(), search.size()));
    return pick(kForward, perf, count, search.size(), d, p);
  });
  run_with(d, algo, [&](void* workspace, size_t bytes) {
    KINDLING_CUDA_CHECK(cudnnConvolutionForward(cuda::cudnn(), &kOne, d.x, x.data<float>(), d.w,
                                                w.data<float>(), d.conv, cudnnConvolutionFwdAlgo_t(algo.algo),
                                                workspace, bytes, &kZero, d.y, y.data<float>()));
  });
  if (bias.defined()) {
    constexpr int kBlock = 256;
    add_bias_kernel<<<cuda::grid_for(y.numel(), kBlock), kBlock, 0, cuda::stream()>>>(
        y.data<float>(), bias.data<float>(), bias.stride(0), p.K, p.P * p.Q, y.numel());
    KINDLING_CUDA_LAUNCH_CHECK("add_bias_kernel");
  }
}

// dy [N,K,P,Q], w [K,C/G,R,S] -> dx [N,C,H,W];  dx = the transposed convolution of dy with w
void CudaBackend::conv2d_bwd_data(const Conv2dParams& p, const Tensor& dx, const Tensor& dy,
                                  const Tensor& w) {
  check_conv_tensors("conv2d_bwd_data", {&dx, &dy, &w});
  if (dx.numel() == 0) return;
  if (dy.numel() == 0) return fill(dx, 0.0);
  ConvPlan& plan = plan_for(p);
  const ConvDescriptors& d = plan.desc;
  const Algo& algo = algorithm(kBackwardData, plan, p, [&](const SearchWorkspace& search) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    KINDLING_CUDA_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
        cuda::cudnn(), d.w, w.data<float>(), d.y, dy.data<float>(), d.conv, d.x, dx.data<float>(),
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf, search.get(), search.size()));
    return pick(kBackwardData, perf, count, search.size(), d, p);
  });
  run_with(d, algo, [&](void* workspace, size_t bytes) {
    KINDLING_CUDA_CHECK(cudnnConvolutionBackwardData(
        cuda::cudnn(), &kOne, d.w, w.data<float>(), d.y, dy.data<float>(), d.conv,
        cudnnConvolutionBwdDataAlgo_t(algo.algo), workspace, bytes, &kZero, d.x, dx.data<float>()));
  });
}

// x [N,C,H,W], dy [N,K,P,Q] -> dw [K,C/G,R,S] = sum_{n,p,q} dy[n,k,p,q] * x[n, g*C/G + c, ...],
// dbias [K] (if defined) = sum_{n,p,q} dy[n,k,p,q].
void CudaBackend::conv2d_bwd_weight(const Conv2dParams& p, const Tensor& dw, const Tensor& dbias,
                                    const Tensor& x, const Tensor& dy) {
  check_conv_tensors("conv2d_bwd_weight", {&dw, &x, &dy});
  if (dbias.defined()) {
    cuda::channel_sums("conv2d_bwd_weight", cuda::ChannelGeometry{p.N, p.K, p.P * p.Q},
                       BiasGradTerm{dy.data<float>()}, BiasGradFinish{dbias.data<float>()});
  }
  if (dw.numel() == 0) return;
  if (dy.numel() == 0 || x.numel() == 0) return fill(dw, 0.0);
  ConvPlan& plan = plan_for(p);
  const ConvDescriptors& d = plan.desc;
  const Algo& algo = algorithm(kBackwardFilter, plan, p, [&](const SearchWorkspace& search) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    KINDLING_CUDA_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        cuda::cudnn(), d.x, x.data<float>(), d.y, dy.data<float>(), d.conv, d.w, dw.data<float>(),
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf, search.get(), search.size()));
    return pick(kBackwardFilter, perf, count, search.size(), d, p);
  });
  run_with(d, algo, [&](void* workspace, size_t bytes) {
    KINDLING_CUDA_CHECK(cudnnConvolutionBackwardFilter(
        cuda::cudnn(), &kOne, d.x, x.data<float>(), d.y, dy.data<float>(), d.conv,
        cudnnConvolutionBwdFilterAlgo_t(algo.algo), workspace, bytes, &kZero, d.w, dw.data<float>()));
  });
}

std::string conv2d_algorithms(const Conv2dParams& p) {
  static const char* const kNames[3][8] = {
      {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING", "WINOGRAD",
       "WINOGRAD_NONFUSED"},
      {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED", "?", "?"},
      {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING", "?"}};
  std::lock_guard lock(plans_mutex);
  const auto found = plans->find(plan_key(p, p.N));
  std::string text;
  for (int direction = kForward; direction <= kBackwardFilter; ++direction) {
    if (!text.empty()) text += ", ";
    const Algo* algo = found == plans->end() ? nullptr : &found->second->algo[size_t(direction)];
    if (algo == nullptr || !algo->chosen) {
      text += fmt::format("{} not chosen yet", kDirectionNames[direction]);
      continue;
    }
    const char* math = algo->math == CUDNN_FMA_MATH       ? "FMA"
                       : algo->math == CUDNN_DEFAULT_MATH ? "default"
                                                          : "tensor-op";
    text += fmt::format("{} {} ({} math, {} bytes of workspace)", kDirectionNames[direction],
                        algo->algo >= 0 && algo->algo < 8 ? kNames[direction][algo->algo] : "?", math,
                        algo->workspace);
  }
  return text;
}

}  // namespace kindling
