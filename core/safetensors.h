// The safetensors file format, which NumPy, PyTorch or a 30-line script can read:
//   [8 bytes: header length N, little-endian u64] [N bytes: JSON header] [tensor bytes]
// The header maps each tensor name to {"dtype": "F32"|"I64"|"U8"|"BF16", "shape": [...],
// "data_offsets": [begin, end]} (byte offsets into the data that follows the header) and holds an
// optional "__metadata__" object of string -> string. Tensors are stored C-contiguous and
// little-endian, back to back with no holes, as the format requires. Files are written through
// AtomicFile (core/atomic_file.h): a temporary of a unique name, fsync'd, then renamed over <path>,
// so a crash or a full disk never leaves a half-written file behind.
//
// The training checkpoint stored in this format is core/checkpoint.h.
#pragma once
#include "core/error.h"
#include "core/tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kindling {

// Named tensors in a fixed order (the same alias as nn/module.h's).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
};

class SafetensorsFile {
 public:
  // Reads and validates `path`: the file holds at least the 8-byte length; the header length fits
  // in the file; the header is a JSON object; every entry has a known dtype, a shape of
  // non-negative integers and a [begin, end] range inside the data whose size is the shape's; the
  // ranges tile the data with no overlap and no hole; __metadata__ maps strings to strings.
  // Throws FileError "checkpoint <path>: <what is wrong, naming the tensor>".
  static SafetensorsFile read(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in data order
  const SafetensorsEntry* find(const std::string& name) const;
  // The tensor `name` as a new CPU tensor; FileError when the file has no such tensor.
  Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsEntry> entries_;
  std::vector<char> bytes_;   // the whole file
  uint64_t data_offset_ = 0;  // where the data section starts in bytes_
};

// Writes `tensors` (any device, f32/i64/u8, unique names) and `metadata` atomically to `path`.
// Throws FileError naming the path when it cannot; the old file at `path`, if any, is then left
// unchanged and no temporary remains.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata);

// The format's name of a dtype: "F32", "I64", "U8", "BF16".
const char* safetensors_dtype_name(DType dtype);

// Throws FileError "checkpoint <path>: <message>", the form of every error about a safetensors
// file, whether the format or the training checkpoint stored in it is at fault.
template <typename... Args>
[[noreturn]] void throw_checkpoint_error(const std::string& path, fmt::format_string<Args...> format,
                                         Args&&... args) {
  throw FileError(fmt::format("checkpoint {}: {}", path, fmt::format(format, std::forward<Args>(args)...)));
}

}  // namespace kindling
