// The thread pool under resizing: a study sets the thread count before every run, so the pool must
// survive any sequence of resizes and keep covering every index exactly once.
#include "core/parallel.h"

#include <doctest/doctest.h>

#include <atomic>
#include <vector>

using namespace kindling;

TEST_CASE("parallel_for covers every index once across repeated resizes") {
  const int original = num_threads();
  for (int round = 0; round < 6; ++round) {
    set_num_threads(1 + round % 3);
    CHECK(num_threads() == 1 + round % 3);
    for (int call = 0; call < 3; ++call) {
      std::vector<std::atomic<int>> hits(1000);
      parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
      });
      int wrong = 0;
      for (auto& h : hits) wrong += h.load() != 1;
      CHECK(wrong == 0);
    }
  }
  set_num_threads(original);
}
