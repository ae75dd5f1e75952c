// How ops/cpu/conv.cpp turns a convolution into GEMMs: the plan (which lowering, how the batch is
// chunked over threads), the lowering of one image, the per-worker loop and scratch.
//
// B [CRS, pixels], the right operand of the forward GEMM, is the image lowered one of two ways:
//   phased   the zero-padded image split into stride_h x stride_w phases (phase (a,b) holds padded
//            rows a, a+sh, ... and columns b, b+sw, ...; one phase when the stride is 1). Row
//            (c,r,s) of B is then a phase plane read from a fixed offset: phase (r*dh % sh,
//            s*dw % sw), shifted by (r*dh / sh) rows and (s*dw / sw) columns. Its columns are
//            "wide" pixels j = p*Ws + q over the phase width Ws; those with q >= Q are computed and
//            dropped (Ws/Q - 1 extra work: 6% at 32x32, 25% at 8x8), far cheaper than writing a 9x
//            larger im2col matrix. A 1×1 stride-1 unpadded convolution reads x itself.
//   columns  an explicit im2col matrix, a chunk's images side by side ([CRS, images*PQ]) so one GEMM is wide
//            enough: for small output planes (4x4), where the phased padding would waste half the
//            work and one image's GEMM is too narrow, and for strided 1×1 convolutions (which read
//            a quarter of the image). The strided data gradient also uses this plan, for col2im.
#pragma once
#include "core/backend.h"
#include "core/parallel.h"

#include <algorithm>
#include <vector>

namespace kindling::cpu {

struct LoweringPlan {
  int64_t Cg, Kg, CRS, HW, PQ;
  bool phased;                // else columns
  bool copy_input;            // a lowered copy is made (false: x is read in place)
  int64_t phases;             // phased: stride_h * stride_w
  int64_t Hs, Ws;             // phased: a phase's rows and columns
  int64_t plane;              // phased: floats per (channel, phase) plane
  int64_t wide;               // GEMM columns per image: phased P*Ws, columns PQ
  int64_t lowered_floats;     // one lowered image: padded phases (+ read-past slack), or [CRS, PQ]
  int64_t images;             // images per chunk at most (one GEMM for columns; the phased
                              // weight gradient's dot products span them)
  int64_t workers;            // threads used: each takes an equal share of the batch
  std::vector<int64_t> rows;  // B's row offsets within one lowered image
};

LoweringPlan make_lowering_plan(const Conv2dParams& p, bool allow_phased = true);

// Lowers group g of image n of t [N, C, H, W] into `lowered` and returns where B starts. Phased:
// only positions that hold image pixels are written, the caller zeroes the buffer once. Columns:
// the matrix has row stride ld (images*PQ when a chunk's images sit side by side; 0 means PQ).
const float* lower_image(const Conv2dParams& p, const LoweringPlan& plan, const float* t, int64_t n,
                         int64_t g, float* lowered, int64_t ld = 0);

// True when the GEMM's columns are y's pixels (no padding columns to drop).
inline bool output_is_dense(const Conv2dParams& p, const LoweringPlan& plan) {
  return !plan.phased || plan.Ws == p.Q;
}

// Runs fn(worker, first_image, images) for every chunk of a batch of N images; each of `workers`
// threads takes an equal contiguous share of the batch (within one image), cut into near-equal
// chunks of at most `images`, and calls begin(worker) before its first chunk. Splitting images
// rather than whole chunks between the workers keeps them balanced when the chunk count is odd
// (64 images in chunks of 14: 32 + 32, not 28 + 36).
template <typename Begin, typename Fn>
void for_each_chunk(int64_t N, int64_t workers, int64_t images, Begin&& begin, Fn&& fn) {
  parallel_for(0, workers, 1, [&](int64_t first_worker, int64_t end_worker) {
    for (int64_t worker = first_worker; worker < end_worker; ++worker) {
      begin(worker);
      const int64_t first = N * worker / workers, count = N * (worker + 1) / workers - first;
      const int64_t chunks = (count + images - 1) / images;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t n0 = first + count * chunk / chunks;
        fn(worker, n0, first + count * (chunk + 1) / chunks - n0);
      }
    }
  });
}

// The same over a convolution's batch as its plan cuts it.
template <typename Begin, typename Fn>
void for_each_chunk(const Conv2dParams& p, const LoweringPlan& plan, Begin&& begin, Fn&& fn) {
  for_each_chunk(p.N, plan.workers, plan.images, begin, fn);
}

// Uninitialised scratch from the caching allocator, carved into one slice per worker.
struct Workspace {
  Tensor buffer;
  int64_t per_worker;
  Workspace(int64_t workers, int64_t floats_per_worker)
      : per_worker(std::max<int64_t>(floats_per_worker, 16)) {
    buffer = empty({std::max<int64_t>(workers, 1) * per_worker});
  }
  float* slice(int64_t worker) const { return buffer.data<float>() + worker * per_worker; }
};

}  // namespace kindling::cpu
