// Walking K same-shaped strided operands on the CPU. Dims are coalesced where every operand is
// contiguous across them, so a dense tensor becomes one long run; the callback gets element
// offsets of the run's start in each operand, the run length, and each operand's inner stride.
// Large walks are split over the thread pool by outer index.
#pragma once
#include "core/parallel.h"
#include "core/tensor.h"

#include <array>

namespace kindling::cpu {

template <size_t K>
struct StridedLayout {
  Shape shape;                   // coalesced, innermost last
  std::array<Shape, K> strides;  // per operand, in elements
};

template <size_t K>
StridedLayout<K> coalesce(const Shape& shape, const std::array<const Shape*, K>& strides) {
  StridedLayout<K> layout;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims carry no stepping
    bool merge = !layout.shape.empty();
    for (size_t k = 0; k < K && merge; ++k) merge = layout.strides[k].back() == (*strides[k])[d] * shape[d];
    if (merge) {
      layout.shape.back() *= shape[d];
      for (size_t k = 0; k < K; ++k) layout.strides[k].back() = (*strides[k])[d];
    } else {
      layout.shape.push_back(shape[d]);
      for (size_t k = 0; k < K; ++k) layout.strides[k].push_back((*strides[k])[d]);
    }
  }
  if (layout.shape.empty()) {  // a scalar or all-ones shape: one run of length 1
    layout.shape.push_back(1);
    for (size_t k = 0; k < K; ++k) layout.strides[k].push_back(1);
  }
  return layout;
}

// fn(std::array<int64_t,K> offsets, int64_t run_length, std::array<int64_t,K> inner_strides)
// A run longer than grain_elements is cut into pieces of that length, so a dense tensor (one long
// run after coalescing) is still split over the pool.
template <size_t K, typename Fn>
void for_each_run(const Shape& shape, const std::array<const Shape*, K>& strides, Fn&& fn,
                  int64_t grain_elements = 32768) {
  if (shape_numel(shape) == 0) return;
  const StridedLayout<K> layout = coalesce<K>(shape, strides);
  const int64_t ndim = int64_t(layout.shape.size());
  const int64_t inner = layout.shape.back();
  const int64_t outer = shape_numel(layout.shape) / inner;
  std::array<int64_t, K> inner_strides;
  for (size_t k = 0; k < K; ++k) inner_strides[k] = layout.strides[k].back();
  const int64_t piece = std::max<int64_t>(1, std::min(inner, grain_elements));
  const int64_t pieces = (inner + piece - 1) / piece;  // per run
  const int64_t grain_tasks = std::max<int64_t>(1, grain_elements / piece);
  parallel_for(0, outer * pieces, grain_tasks, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t row = task / pieces, start = (task % pieces) * piece;
      std::array<int64_t, K> offsets{};
      int64_t rest = row;
      for (int64_t d = ndim - 2; d >= 0; --d) {
        const int64_t index = rest % layout.shape[d];
        rest /= layout.shape[d];
        for (size_t k = 0; k < K; ++k) offsets[k] += index * layout.strides[k][d];
      }
      for (size_t k = 0; k < K; ++k) offsets[k] += start * inner_strides[k];
      fn(offsets, std::min(piece, inner - start), inner_strides);
    }
  });
}

}  // namespace kindling::cpu
