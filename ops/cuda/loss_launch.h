// The CUDA loss kernel's launcher (ops/cuda/loss.cu), called by CudaBackend::loss_rows. Kept as a
// plain function so the kernel compiles and can be read without the backend class.
#pragma once
#include "losses/loss_desc.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace kindling {

// Device pointers: logits [N,C] f32 contiguous, labels [N] i64 contiguous and already range-checked
// -> row_loss [N] f32; grad [N,C] f32 (nullptr: none wanted) = grad_scale * d row_loss[n] / d z_n.
// bad_row_out: one device int. The launcher first sets it to 0x7F7F7F7F (memset), then the kernel
// lowers it with atomicMin to the first row holding a NaN or Inf logit; after the stream reaches
// that point the caller reads it back, and any value < N names the bad row (ValueError).
// Returns the launch status (cudaErrorInvalidValue for N >= 2^31 or C < 1); the caller turns a
// failure into a DeviceError. (No kindling error here: fmt's headers do not compile under nvcc in
// C++20 mode, so this file stays free of core/error.h.)
cudaError_t launch_loss_rows(const LossDesc& loss, float* row_loss, float* grad, const float* logits,
                             const int64_t* labels, int64_t N, int64_t C, float grad_scale,
                             int* bad_row_out, cudaStream_t stream);

}  // namespace kindling
