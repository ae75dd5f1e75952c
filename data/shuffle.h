// Seeded permutations. Every random order in data/ comes from here, so an order depends only on the
// generator's state and never on threads or timing.
#pragma once
#include "core/rng.h"

#include <cstdint>
#include <numeric>
#include <vector>

namespace kindling::data {

// A uniformly random permutation of 0..n-1 (Fisher-Yates, drawing from `generator`).
inline std::vector<int64_t> random_permutation(int64_t n, Generator& generator) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[generator.randint(i + 1)]);
  return order;
}

}  // namespace kindling::data
