// CPU convolution: im2col + cblas_sgemm. The batch is cut into chunks of B images; each pool thread
// owns a slice of one workspace and runs single-threaded sgemm on its chunks, so there is one level
// of threads. Small images (late ResNet stages, P*Q = 64) put B images side by side in one column
// matrix so the GEMM is wide enough to run near peak; 1×1 stride-1 unpadded convolutions skip
// im2col and multiply the image directly. Per group g the three products are
//   forward      y[n]_g  [Kg, PQ]   = W_g [Kg, CRS] · col(x[n]_g) [CRS, PQ]
//   data grad    dcol    [CRS, PQ]  = W_gᵀ · dy[n]_g,   dx[n]_g = col2im(dcol)
//   weight grad  dW_g    [Kg, CRS] += dy[n]_g · col(x[n]_g)ᵀ   (per thread, then summed)
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/im2col.h"
#include "ops/cpu/lane_sums.h"

#include "core/parallel.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace kindling {
namespace {

// Row-major sgemm: C = alpha * op(A) · op(B) + beta * C.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              int(M), int(N), int(K), 1.0f, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

// How a convolution is cut into GEMMs and spread over threads.
struct ConvPlan {
  int64_t Cg, Kg;        // channels in and out per group
  int64_t CRS, HW, PQ;   // GEMM depth (forward), input plane, output plane
  bool direct;           // 1×1, stride 1, no padding: x[n] is its own column matrix
  int64_t images;        // B: images per chunk, side by side in one column matrix
  int64_t chunks;        // ceil(N / B)
  int64_t workers;       // threads used, each with its own workspace slice
  int64_t col_floats;    // per worker: column matrix [CRS, B*PQ]
  int64_t gemm_floats;   // per worker: a [Kg, B*PQ] output / gradient block (B > 1 only)
};

// Column-matrix width we aim for: below a few hundred columns sgemm spends its time packing.
constexpr int64_t kTargetColumns = 512;
// Upper bound on one worker's column matrix, so the workspace stays in the L2/L3 caches.
constexpr int64_t kMaxColumnFloats = int64_t(1) << 20;

ConvPlan make_plan(const Conv2dParams& p) {
  ConvPlan plan;
  plan.Cg = p.C / p.groups;
  plan.Kg = p.K / p.groups;
  plan.CRS = plan.Cg * p.R * p.S;
  plan.HW = p.H * p.W;
  plan.PQ = p.P * p.Q;
  plan.direct = p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 &&
                p.pad_w == 0;
  const int64_t threads = num_threads();
  int64_t images = plan.direct ? 1 : std::max<int64_t>(1, kTargetColumns / plan.PQ);
  images = std::min(images, std::max<int64_t>(1, kMaxColumnFloats / (plan.CRS * plan.PQ)));
  images = std::min(images, std::max<int64_t>(1, p.N / threads));   // keep every thread busy
  plan.images = images;
  plan.chunks = (p.N + images - 1) / images;
  plan.workers = std::min(threads, plan.chunks);
  plan.col_floats = plan.direct ? 0 : plan.CRS * images * plan.PQ;
  plan.gemm_floats = images > 1 ? plan.Kg * images * plan.PQ : 0;
  return plan;
}

// Runs fn(worker, chunk_begin_image, chunk_images) for every chunk, each worker on its own thread
// with a contiguous range of chunks.
template <typename Fn>
void for_each_chunk(const Conv2dParams& p, const ConvPlan& plan, Fn&& fn) {
  parallel_for(0, plan.workers, 1, [&](int64_t first_worker, int64_t end_worker) {
    for (int64_t worker = first_worker; worker < end_worker; ++worker) {
      const int64_t chunk_begin = plan.chunks * worker / plan.workers;
      const int64_t chunk_end = plan.chunks * (worker + 1) / plan.workers;
      for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
        const int64_t n0 = chunk * plan.images;
        fn(worker, n0, std::min(plan.images, p.N - n0));
      }
    }
  });
}

// Uninitialised scratch from the caching allocator, carved into one slice per worker.
struct Workspace {
  Tensor buffer;
  int64_t per_worker;
  Workspace(int64_t workers, int64_t floats_per_worker)
      : per_worker(std::max<int64_t>(floats_per_worker, 16)) {
    buffer = empty({workers * per_worker});
  }
  float* slice(int64_t worker) const { return buffer.data<float>() + worker * per_worker; }
};

// The column matrix of images [n0, n0+B) for group g, side by side (row stride B*PQ).
void build_columns(const Conv2dParams& p, const ConvPlan& plan, const float* x, int64_t n0,
                   int64_t B, int64_t g, float* col) {
  for (int64_t b = 0; b < B; ++b)
    cpu::im2col(p, plan.Cg, x + ((n0 + b) * p.C + g * plan.Cg) * plan.HW, col + b * plan.PQ, B * plan.PQ);
}

// Copies the [Kg, PQ] blocks of group g of images [n0, n0+B) of t [N,K,P,Q] side by side into
// block [Kg, B*PQ] (gather), or back (scatter).
void gather_block(const Conv2dParams& p, const ConvPlan& plan, const float* t, int64_t n0, int64_t B,
                  int64_t g, float* block) {
  for (int64_t k = 0; k < plan.Kg; ++k)
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(block + (k * B + b) * plan.PQ, t + ((n0 + b) * p.K + g * plan.Kg + k) * plan.PQ,
                  size_t(plan.PQ) * sizeof(float));
}
void scatter_block(const Conv2dParams& p, const ConvPlan& plan, const float* block, int64_t n0,
                   int64_t B, int64_t g, float* t) {
  for (int64_t k = 0; k < plan.Kg; ++k)
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(t + ((n0 + b) * p.K + g * plan.Kg + k) * plan.PQ, block + (k * B + b) * plan.PQ,
                  size_t(plan.PQ) * sizeof(float));
}

}  // namespace

// x [N,C,H,W], w [K,C/G,R,S], bias [K] or undefined -> y [N,K,P,Q];
// y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*C/G + c, p*sh - ph + r*dh, q*sw - pw + s*dw] * w[k,c,r,s]
void CpuBackend::conv2d_fwd(const Conv2dParams& p, const Tensor& y, const Tensor& x, const Tensor& w,
                            const Tensor& bias) {
  const ConvPlan plan = make_plan(p);
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
  float* yp = y.data<float>();
  const Workspace ws(plan.workers, plan.col_floats + plan.gemm_floats);
  for_each_chunk(p, plan, [&](int64_t worker, int64_t n0, int64_t B) {
    float* col = ws.slice(worker);
    float* out = col + plan.col_floats;
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* wg = wp + g * plan.Kg * plan.CRS;
      float* yg = yp + (n0 * p.K + g * plan.Kg) * plan.PQ;
      if (plan.direct) {   // B == 1
        sgemm(false, false, plan.Kg, plan.PQ, plan.CRS, wg, plan.CRS,
              xp + (n0 * p.C + g * plan.Cg) * plan.HW, plan.HW, 0.0f, yg, plan.PQ);
        continue;
      }
      build_columns(p, plan, xp, n0, B, g, col);
      sgemm(false, false, plan.Kg, B * plan.PQ, plan.CRS, wg, plan.CRS, col, B * plan.PQ, 0.0f,
            B == 1 ? yg : out, B * plan.PQ);
      if (B > 1) scatter_block(p, plan, out, n0, B, g, yp);
    }
    if (bp) {
      for (int64_t b = n0; b < n0 + B; ++b)
        for (int64_t k = 0; k < p.K; ++k) {
          float* row = yp + (b * p.K + k) * plan.PQ;
          const float v = bp[k];
          for (int64_t i = 0; i < plan.PQ; ++i) row[i] += v;
        }
    }
  });
}

// dy [N,K,P,Q], w [K,C/G,R,S] -> dx [N,C,H,W];  dx[n]_g = col2im(W_gᵀ · dy[n]_g)
void CpuBackend::conv2d_bwd_data(const Conv2dParams& p, const Tensor& dx, const Tensor& dy,
                                 const Tensor& w) {
  const ConvPlan plan = make_plan(p);
  const float* dyp = dy.data<float>();
  const float* wp = w.data<float>();
  float* dxp = dx.data<float>();
  const int64_t col_floats = plan.CRS * plan.images * plan.PQ;   // the direct path needs none
  const Workspace ws(plan.workers, (plan.direct ? 0 : col_floats) + plan.gemm_floats);
  for_each_chunk(p, plan, [&](int64_t worker, int64_t n0, int64_t B) {
    float* dcol = ws.slice(worker);
    float* dy_block = dcol + (plan.direct ? 0 : col_floats);
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* wg = wp + g * plan.Kg * plan.CRS;
      float* dxg = dxp + (n0 * p.C + g * plan.Cg) * plan.HW;
      const float* dyg = dyp + (n0 * p.K + g * plan.Kg) * plan.PQ;
      if (B > 1) {
        gather_block(p, plan, dyp, n0, B, g, dy_block);
        dyg = dy_block;
      }
      if (plan.direct) {   // B == 1: dx[n]_g = W_gᵀ · dy[n]_g
        sgemm(true, false, plan.CRS, plan.PQ, plan.Kg, wg, plan.CRS, dyg, plan.PQ, 0.0f, dxg, plan.HW);
        continue;
      }
      sgemm(true, false, plan.CRS, B * plan.PQ, plan.Kg, wg, plan.CRS, dyg, B * plan.PQ, 0.0f, dcol,
            B * plan.PQ);
      for (int64_t b = 0; b < B; ++b)
        cpu::col2im(p, plan.Cg, dcol + b * plan.PQ, B * plan.PQ, dxg + b * p.C * plan.HW);
    }
  });
}

// x [N,C,H,W], dy [N,K,P,Q] -> dw [K,C/G,R,S] = sum_n dy[n]_g · col(x[n]_g)ᵀ per group,
// dbias [K] (if defined) = sum_{n,p,q} dy[n,k,p,q]. Each worker sums its chunks into its own
// partial (worker 0 straight into dw), then the partials are added in worker order, so the result
// does not depend on thread timing.
void CpuBackend::conv2d_bwd_weight(const Conv2dParams& p, const Tensor& dw, const Tensor& dbias,
                                   const Tensor& x, const Tensor& dy) {
  const ConvPlan plan = make_plan(p);
  const float* xp = x.data<float>();
  const float* dyp = dy.data<float>();
  float* dwp = dw.data<float>();
  if (plan.chunks == 0) {   // an empty batch: zero gradients
    std::fill_n(dwp, dw.numel(), 0.0f);
    if (dbias.defined()) std::fill_n(dbias.data<float>(), p.K, 0.0f);
    return;
  }
  const int64_t dw_floats = p.K * plan.CRS;
  const Workspace ws(plan.workers, plan.col_floats + plan.gemm_floats);
  const Workspace partial_dw(plan.workers, dw_floats);
  std::vector<double> partial_bias(size_t(plan.workers * p.K), 0.0);
  std::vector<char> started(size_t(plan.workers), 0);
  for_each_chunk(p, plan, [&](int64_t worker, int64_t n0, int64_t B) {
    float* col = ws.slice(worker);
    float* dy_block = col + plan.col_floats;
    float* dw_acc = worker == 0 ? dwp : partial_dw.slice(worker);
    const float beta = started[size_t(worker)] ? 1.0f : 0.0f;
    started[size_t(worker)] = 1;
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* xg = xp + (n0 * p.C + g * plan.Cg) * plan.HW;   // direct: its own columns
      const float* dyg = dyp + (n0 * p.K + g * plan.Kg) * plan.PQ;
      if (!plan.direct) {
        build_columns(p, plan, xp, n0, B, g, col);
        xg = col;
      }
      if (B > 1) {
        gather_block(p, plan, dyp, n0, B, g, dy_block);
        dyg = dy_block;
      }
      sgemm(false, true, plan.Kg, plan.CRS, B * plan.PQ, dyg, B * plan.PQ, xg, B * plan.PQ, beta,
            dw_acc + g * plan.Kg * plan.CRS, plan.CRS);
    }
    if (dbias.defined()) {
      double* bias_acc = partial_bias.data() + worker * p.K;
      for (int64_t b = n0; b < n0 + B; ++b)
        for (int64_t k = 0; k < p.K; ++k) {
          bias_acc[k] += cpu::sum_f64(dyp + (b * p.K + k) * plan.PQ, plan.PQ);
        }
    }
  });
  for (int64_t worker = 1; worker < plan.workers; ++worker) {
    const float* part = partial_dw.slice(worker);
    for (int64_t i = 0; i < dw_floats; ++i) dwp[i] += part[i];
  }
  if (dbias.defined()) {
    float* dbp = dbias.data<float>();
    for (int64_t k = 0; k < p.K; ++k) {
      double sum = 0.0;
      for (int64_t worker = 0; worker < plan.workers; ++worker) sum += partial_bias[size_t(worker * p.K + k)];
      dbp[k] = float(sum);
    }
  }
}

}  // namespace kindling
