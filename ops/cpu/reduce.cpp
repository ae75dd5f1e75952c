// CPU reductions. Every reduction is an accumulator (start, add, merge, finish) run by one loop
// driver, so sum, mean, max and argmax share the threading and the memory-access pattern.
// Results do not depend on the number of threads: long rows are cut into fixed-size chunks whose
// partial results are merged in order.
#include "ops/cpu/cpu_backend.h"

#include "core/parallel.h"
#include "ops/cpu/lane_sums.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace kindling {
namespace {

constexpr int64_t kChunk = 16384;  // elements of one row reduced by one task
constexpr int64_t kBlock = 256;    // inner columns accumulated side by side (a row of cache lines)
constexpr int64_t kGrain = 32768;  // elements below which a loop stays serial

// Sums accumulate in double: a float accumulator loses digits after ~1e7 additions. add_dense
// sums a contiguous run with vector lanes (lane_sums.h) instead of one serial chain of adds.
struct SumAcc {
  using State = double;
  using Out = float;
  static State start() { return 0.0; }
  static void add(State& s, float x, int64_t) { s += double(x); }
  static void add_dense(State& s, const float* x, int64_t n) { s += cpu::sum_f64(x, n); }
  static void merge(State& s, const State& later) { s += later; }
  static Out finish(const State& s, int64_t) { return float(s); }
};
struct MeanAcc : SumAcc {
  static Out finish(const State& s, int64_t n) { return float(s / double(n)); }  // 0/0 = NaN
};
struct SumSquaresAcc : SumAcc {
  static void add(State& s, float x, int64_t) { s += double(x) * double(x); }
  static void add_dense(State& s, const float* x, int64_t n) {
    double sum = 0.0;
    cpu::add_sum_and_squares_f64(x, n, &sum, &s);
  }
};

// Max and min propagate NaN, as PyTorch does.
template <bool IsMax>
struct ExtremumAcc {
  using State = float;
  using Out = float;
  static State start() {
    return IsMax ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }
  static void add(State& s, float x, int64_t) {
    if ((IsMax ? x > s : x < s) || std::isnan(x)) s = std::isnan(s) ? s : x;
  }
  static void merge(State& s, const State& later) { add(s, later, 0); }
  static Out finish(const State& s, int64_t) { return s; }
};

// The first index of the extremum (or of the first NaN).
template <bool IsMax>
struct ArgAcc {
  struct State {
    float value;
    int64_t index;
  };
  using Out = int64_t;
  static State start() { return {0.0f, -1}; }
  static bool better(float x, const State& s) {
    if (s.index < 0) return true;
    if (std::isnan(s.value)) return false;
    return std::isnan(x) || (IsMax ? x > s.value : x < s.value);
  }
  static void add(State& s, float x, int64_t r) {
    if (better(x, s)) s = {x, r};
  }
  static void merge(State& s, const State& later) {
    if (later.index >= 0 && better(later.value, s)) s = later;
  }
  static Out finish(const State& s, int64_t) { return s.index; }
};

// Adds x[0, n) (reduce indices r0 ...) to s, through the accumulator's dense path when it has one.
template <typename Acc>
void add_run(typename Acc::State& s, const float* x, int64_t n, int64_t r0) {
  if constexpr (requires { Acc::add_dense(s, x, n); }) {
    Acc::add_dense(s, x, n);
  } else {
    for (int64_t i = 0; i < n; ++i) Acc::add(s, x[i], r0 + i);
  }
}

// in [outer, R] -> out [outer]: each row in chunks of kChunk, partial states merged in order.
template <typename Acc>
void reduce_rows(const float* x, typename Acc::Out* y, int64_t outer, int64_t R) {
  using State = typename Acc::State;
  const int64_t chunks = std::max<int64_t>(1, (R + kChunk - 1) / kChunk);
  std::vector<State> partial(chunks > 1 ? size_t(outer * chunks) : 0);
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, std::min(R, kChunk)));
  parallel_for(0, outer * chunks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t o = task / chunks, c = task % chunks;
      const int64_t r0 = c * kChunk, r1 = std::min(R, r0 + kChunk);
      const float* row = x + o * R;
      State s = Acc::start();
      add_run<Acc>(s, row + r0, r1 - r0, r0);
      if (chunks == 1)
        y[o] = Acc::finish(s, R);
      else
        partial[size_t(task)] = s;
    }
  });
  if (chunks == 1) return;
  for (int64_t o = 0; o < outer; ++o) {
    State s = partial[size_t(o * chunks)];
    for (int64_t c = 1; c < chunks; ++c) Acc::merge(s, partial[size_t(o * chunks + c)]);
    y[o] = Acc::finish(s, R);
  }
}

// in [outer, R, inner] -> out [outer, inner]: kBlock columns accumulate together while the loop
// walks down the reduced dim, so every load is a contiguous row segment.
template <typename Acc>
void reduce_columns(const float* x, typename Acc::Out* y, int64_t outer, int64_t R, int64_t inner) {
  using State = typename Acc::State;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, R * std::min(inner, kBlock)));
  parallel_for(0, outer * blocks, grain, [&](int64_t begin, int64_t end) {
    State acc[kBlock];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t o = task / blocks, i0 = (task % blocks) * kBlock;
      const int64_t n = std::min(kBlock, inner - i0);
      for (int64_t j = 0; j < n; ++j) acc[j] = Acc::start();
      for (int64_t r = 0; r < R; ++r) {
        const float* row = x + (o * R + r) * inner + i0;
        for (int64_t j = 0; j < n; ++j) Acc::add(acc[j], row[j], r);
      }
      for (int64_t j = 0; j < n; ++j) y[o * inner + i0 + j] = Acc::finish(acc[j], R);
    }
  });
}

template <typename Acc>
void run(const Tensor& out, const Tensor& in, int64_t outer, int64_t R, int64_t inner) {
  const float* x = in.data<float>();
  auto* y = out.data<typename Acc::Out>();
  if (inner == 1)
    reduce_rows<Acc>(x, y, outer, R);
  else
    reduce_columns<Acc>(x, y, outer, R, inner);
}

}  // namespace

// in [outer, reduce, inner] contiguous f32 -> out [outer, inner];
// out[o,i] = op_{r} in[o,r,i]  (Sum, Mean = Sum/reduce, SumSquares = sum x², Max, Min, ArgMax, ArgMin).
void CpuBackend::reduce(ReduceOp op, const Tensor& out, const Tensor& in, int64_t outer, int64_t R,
                        int64_t inner) {
  KINDLING_CHECK(in.dtype() == DType::f32 && in.is_contiguous() && in.numel() == outer * R * inner,
                 ShapeError, "reduce: input {} is not a contiguous f32 [{},{},{}]", in.describe(), outer, R,
                 inner);
  KINDLING_CHECK(out.is_contiguous() && out.numel() == outer * inner, ShapeError,
                 "reduce: output {} is not a contiguous [{},{}]", out.describe(), outer, inner);
  switch (op) {
    case ReduceOp::Sum:
      return run<SumAcc>(out, in, outer, R, inner);
    case ReduceOp::Mean:
      return run<MeanAcc>(out, in, outer, R, inner);
    case ReduceOp::SumSquares:
      return run<SumSquaresAcc>(out, in, outer, R, inner);
    case ReduceOp::Max:
      return run<ExtremumAcc<true>>(out, in, outer, R, inner);
    case ReduceOp::Min:
      return run<ExtremumAcc<false>>(out, in, outer, R, inner);
    case ReduceOp::ArgMax:
      return run<ArgAcc<true>>(out, in, outer, R, inner);
    case ReduceOp::ArgMin:
      return run<ArgAcc<false>>(out, in, outer, R, inner);
  }
}

}  // namespace kindling
