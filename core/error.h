// kindling::Error and its family: every error a user can cause derives from Error, and its message
// names the op, tensor, file or option at fault and says what was expected. The command line turns
// them into one line on stderr and a non-zero exit. `assert` stays for our own invariants.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace kindling {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShapeError : Error {
  using Error::Error;
};  // shapes that do not fit together
struct DTypeError : Error {
  using Error::Error;
};  // a dtype the op does not take
struct DeviceError : Error {
  using Error::Error;
};  // operands on different devices, no GPU, ...
struct ValueError : Error {
  using Error::Error;
};  // a bad value: label out of range, NaN, bad option
struct FileError : Error {
  using Error::Error;
};  // a missing, truncated or malformed file
struct AutogradError : Error {
  using Error::Error;
};  // backward misuse: freed graph, in-place change
struct UsageError : Error {
  using Error::Error;
};  // a bad command-line flag or value (exit code 2)

}  // namespace kindling

// KINDLING_CHECK(cond, ShapeError, "matmul: a is {}, b is {}", a, b) throws ShapeError with that text.
#define KINDLING_CHECK(cond, ErrorType, ...)                            \
  do {                                                                  \
    if (!(cond)) throw ::kindling::ErrorType(fmt::format(__VA_ARGS__)); \
  } while (0)
