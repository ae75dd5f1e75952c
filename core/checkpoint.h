// Checkpoints as safetensors files, so NumPy, PyTorch or a 30-line script can read them:
//   [8 bytes: header length N, little-endian u64] [N bytes: JSON header] [tensor bytes]
// The header maps each tensor name to {"dtype": "F32"|"I64"|"U8", "shape": [...],
// "data_offsets": [begin, end]} (byte offsets into the data that follows the header) and holds an
// optional "__metadata__" object of string -> string. Tensors are stored C-contiguous and
// little-endian, back to back with no holes, as the format requires.
//
// A training checkpoint holds the model's state_dict under its own names, the optimizer's state
// under "optimizer.<name>", and in __metadata__ the format version, model name and config, loss
// spec, epoch, step and RNG state. Files are written through AtomicFile (core/atomic_file.h): a
// temporary of a unique name, fsync'd, then renamed over <path>, so a crash or a full disk never
// leaves a half-written checkpoint behind.
#pragma once
#include "core/rng.h"
#include "core/tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kindling {

// Named tensors in a fixed order (the same alias as nn/module.h's).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// ---- the safetensors container ----
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;   // byte range in the data section
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
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }   // in data order
  const SafetensorsEntry* find(const std::string& name) const;
  // The tensor `name` as a new CPU tensor; FileError when the file has no such tensor.
  Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsEntry> entries_;
  std::vector<char> bytes_;     // the whole file
  uint64_t data_offset_ = 0;    // where the data section starts in bytes_
};

// Writes `tensors` (any device, f32/i64/u8, unique names) and `metadata` atomically to `path`.
// Throws FileError naming the path when it cannot; the old file at `path`, if any, is then left
// unchanged and no temporary remains.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata);

// ---- training checkpoints ----
inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointInfo {
  std::string model;          // "resnet20"
  std::string model_config;   // JSON text, e.g. {"in_channels":3,"num_classes":10,"input_size":32}
  std::string loss;           // loss spec, e.g. "ce"
  int64_t epoch = 0;          // epochs completed
  int64_t step = 0;           // optimizer steps taken
  GeneratorState rng;         // the generator to restore for an exact resume
  std::map<std::string, std::string> extra;   // anything else (optimizer, schedule, ...)
};

// Writes model_state, then optimizer_state under "optimizer.", and `info` into __metadata__ (keys
// format, format_version, model, model_config, loss, epoch, step, rng_seed, rng_counter, and the
// extra keys, which must not reuse those names).
void save_checkpoint(const std::string& path, const NamedTensors& model_state,
                     const NamedTensors& optimizer_state, const CheckpointInfo& info);

// Reads only the metadata (to build the right model before loading its weights). Metadata keys
// that are absent keep CheckpointInfo's defaults, so a plain safetensors file of weights loads too.
CheckpointInfo read_checkpoint_info(const std::string& path);

// Validates `path` (as SafetensorsFile::read) and then every name, dtype and shape against
// model_state and, unless it is empty, optimizer_state; throws FileError on the first mismatch:
//   "checkpoint last.safetensors: layer1.0.conv1.weight is [16,16,3,3], the model expects [32,16,3,3]"
//   "checkpoint last.safetensors: fc.bias is missing" / "...: has an unexpected tensor fc2.weight".
// Only when all match are the values copied into the given tensors (any device). With an empty
// optimizer_state the file's "optimizer." tensors are ignored. Returns the metadata.
CheckpointInfo load_checkpoint(const std::string& path, const NamedTensors& model_state,
                               const NamedTensors& optimizer_state = {});

}  // namespace kindling
