// A training checkpoint: a safetensors file (core/safetensors.h) holding the model's state_dict
// under its own names, the optimizer's state under "optimizer.<name>", and in __metadata__ the
// format version, model name and config, loss spec, epoch, step and RNG state. Written atomically,
// as every safetensors file is, so a crash or a full disk never leaves a half-written checkpoint.
#pragma once
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/tensor.h"

#include <cstdint>
#include <map>
#include <string>

namespace kindling {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointInfo {
  std::string model;         // "resnet20"
  std::string model_config;  // JSON text, e.g. {"in_channels":3,"num_classes":10,"input_size":32}
  std::string loss;          // loss spec, e.g. "ce"
  int64_t epoch = 0;         // epochs completed
  int64_t step = 0;          // optimizer steps taken
  GeneratorState rng;        // the generator to restore for an exact resume
  std::map<std::string, std::string> extra;  // anything else (optimizer, schedule, ...)
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
