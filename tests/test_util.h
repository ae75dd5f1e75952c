// Small helpers shared by the test files.
#pragma once
#include "core/error.h"

#include <string>

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

}  // namespace kindling::test
