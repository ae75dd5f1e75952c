// CUDA memory kernels: strided (and converting) copies, fills, host transfers.
#include "ops/cuda/cuda_allocator.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/strided.cuh"
#include "ops/kernel_checks.h"

#include <cmath>

namespace kindling {
namespace {

template <typename D, typename S>
struct ConvertCopy {
  D* out;
  const S* in;
  __device__ void operator()(const int64_t (&off)[2]) const { out[off[0]] = D(in[off[1]]); }
};

template <typename T>
struct Fill {
  T* out;
  T value;
  __device__ void operator()(const int64_t (&off)[1]) const { out[off[0]] = value; }
};

}  // namespace

// dst[i] = (Dst) src[i] over the common shape, any strides on either side.
void CudaBackend::copy(const Tensor& dst, const Tensor& src) {
  KINDLING_CHECK(dst.shape() == src.shape(), ShapeError, "copy: destination {} and source {} differ",
                 dst.describe(), src.describe());
  if (dst.numel() == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    KINDLING_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(),
                                        size_t(dst.numel()) * dtype_size(dst.dtype()),
                                        cudaMemcpyDeviceToDevice, cuda::stream()));
    return;
  }
  dispatch_dtype(dst.dtype(), "copy", "CUDA", [&](auto dst_zero) {
    using D = decltype(dst_zero);
    dispatch_dtype(src.dtype(), "copy", "CUDA", [&](auto src_zero) {
      using S = decltype(src_zero);
      cuda::strided_walk<2>(
          "copy", dst.shape(), {&dst.strides(), &src.strides()},
          ConvertCopy<D, S>{static_cast<D*>(dst.data_ptr()), static_cast<const S*>(src.data_ptr())});
    });
  });
}

// Queued on the stream through pinned staging; host_src may be reused on return.
void CudaBackend::copy_from_host(void* dst, const void* host_src, size_t bytes) {
  cuda::upload(dst, host_src, bytes);
}

// Waits for every kernel queued before it: host_dst is complete on return. A synchronisation, so
// it reports the loss kernels' deferred errors.
void CudaBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  cuda::download(host_dst, src, bytes);
  cuda::raise_deferred_errors();
}

void CudaBackend::fill(const Tensor& dst, double value) {
  if (dst.numel() == 0) return;
  if (value == 0.0 && !std::signbit(value) && dst.is_contiguous()) {  // all-zero bits in every dtype
    KINDLING_CUDA_CHECK(
        cudaMemsetAsync(dst.data_ptr(), 0, size_t(dst.numel()) * dtype_size(dst.dtype()), cuda::stream()));
    return;
  }
  dispatch_dtype(dst.dtype(), "fill", "CUDA", [&](auto zero) {
    using T = decltype(zero);
    cuda::strided_walk<1>("fill", dst.shape(), {&dst.strides()},
                          Fill<T>{static_cast<T*>(dst.data_ptr()), T(value)});
  });
}

}  // namespace kindling
