// Small helpers shared by the test files.
#pragma once
#include "core/error.h"

#include <cmath>
#include <string>
#include <vector>

namespace kindling::test {

// The message of the kindling::Error that fn throws, or "no error".
template <typename Fn>
std::string error_text(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// ||found - expected|| / ||expected|| over all elements, in double; the plain distance when
// `expected` is all zero. The sizes must match.
inline double relative_norm_error(const std::vector<float>& found, const std::vector<float>& expected) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff += (double(found[i]) - expected[i]) * (double(found[i]) - expected[i]);
    norm += double(expected[i]) * expected[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

}  // namespace kindling::test
