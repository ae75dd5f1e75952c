#include "core/rng.h"

#include <cmath>
#include <numbers>

namespace kindling {

double Generator::uniform() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double Generator::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  // Box-Muller; 1 - u keeps the log's argument in (0, 1].
  const double u1 = 1.0 - uniform(), u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  spare_normal_ = radius * std::sin(2.0 * std::numbers::pi * u2);
  has_spare_normal_ = true;
  return radius * std::cos(2.0 * std::numbers::pi * u2);
}

int64_t Generator::randint(int64_t n) {
  // Rejection sampling removes the modulo bias.
  const uint64_t range = uint64_t(n);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t bits;
  do bits = next_u64();
  while (bits >= limit);
  return int64_t(bits % range);
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace kindling
