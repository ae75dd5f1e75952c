// CPU memory kernels: strided (and converting) copies, fills, host transfers.
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/strided.h"
#include "ops/kernel_checks.h"

#include <cstring>

namespace kindling {
// dst[i] = (Dst) src[i] over the common shape, any strides on either side.
void CpuBackend::copy(const Tensor& dst, const Tensor& src) {
  KINDLING_CHECK(dst.shape() == src.shape(), ShapeError, "copy: destination {} and source {} differ",
                 dst.describe(), src.describe());
  dispatch_dtype(dst.dtype(), "copy", "the CPU", [&](auto dst_zero) {
    using D = decltype(dst_zero);
    dispatch_dtype(src.dtype(), "copy", "the CPU", [&](auto src_zero) {
      using S = decltype(src_zero);
      D* out = static_cast<D*>(dst.data_ptr());
      const S* in = static_cast<const S*>(src.data_ptr());
      cpu::for_each_run<2>(dst.shape(), {&dst.strides(), &src.strides()},
                           [&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
                             if constexpr (std::is_same_v<D, S>) {
                               if (st[0] == 1 && st[1] == 1) {
                                 std::memcpy(out + off[0], in + off[1], size_t(n) * sizeof(D));
                                 return;
                               }
                             }
                             for (int64_t i = 0; i < n; ++i)
                               out[off[0] + i * st[0]] = D(in[off[1] + i * st[1]]);
                           });
    });
  });
}

void CpuBackend::copy_from_host(void* dst, const void* host_src, size_t bytes) {
  std::memcpy(dst, host_src, bytes);
}

void CpuBackend::copy_to_host(void* host_dst, const void* src, size_t bytes) {
  std::memcpy(host_dst, src, bytes);
}

void CpuBackend::fill(const Tensor& dst, double value) {
  dispatch_dtype(dst.dtype(), "fill", "the CPU", [&](auto zero) {
    using T = decltype(zero);
    T* out = static_cast<T*>(dst.data_ptr());
    const T v = T(value);
    cpu::for_each_run<1>(dst.shape(), {&dst.strides()},
                         [&](std::array<int64_t, 1> off, int64_t n, std::array<int64_t, 1> st) {
                           for (int64_t i = 0; i < n; ++i) out[off[0] + i * st[0]] = v;
                         });
  });
}

}  // namespace kindling
