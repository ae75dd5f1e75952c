// Training checkpoints (core/checkpoint.h) on top of the safetensors format: the metadata keys,
// the "optimizer." prefix, and the check of every name, dtype and shape before anything is copied.
#include "core/checkpoint.h"

#include "core/autograd.h"

#include <algorithm>
#include <set>

namespace kindling {

namespace {
const char* const kOptimizerPrefix = "optimizer.";
const char* const kReservedKeys[] = {"format", "format_version", "model",    "model_config", "loss",
                                     "epoch",  "step",           "rng_seed", "rng_counter"};

uint64_t parse_unsigned(const std::string& path, const std::string& key, const std::string& text) {
  size_t used = 0;
  uint64_t value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || text[0] == '-')
    throw_checkpoint_error(path, "metadata {}='{}' is not a non-negative integer", key, text);
  return value;
}

CheckpointInfo info_from_metadata(const std::string& path,
                                  const std::map<std::string, std::string>& metadata) {
  CheckpointInfo info;
  auto get = [&](const char* key) -> const std::string* {
    auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
  };
  if (const std::string* version = get("format_version")) {
    const uint64_t v = parse_unsigned(path, "format_version", *version);
    if (v > uint64_t(kCheckpointFormatVersion))
      throw_checkpoint_error(path, "format_version {} is newer than this kindling reads ({})", v,
                             kCheckpointFormatVersion);
  }
  if (const std::string* s = get("model")) info.model = *s;
  if (const std::string* s = get("model_config")) info.model_config = *s;
  if (const std::string* s = get("loss")) info.loss = *s;
  if (const std::string* s = get("epoch")) info.epoch = int64_t(parse_unsigned(path, "epoch", *s));
  if (const std::string* s = get("step")) info.step = int64_t(parse_unsigned(path, "step", *s));
  if (const std::string* s = get("rng_seed")) info.rng.seed = parse_unsigned(path, "rng_seed", *s);
  if (const std::string* s = get("rng_counter")) info.rng.counter = parse_unsigned(path, "rng_counter", *s);
  for (const auto& [key, value] : metadata)
    if (std::find(std::begin(kReservedKeys), std::end(kReservedKeys), key) == std::end(kReservedKeys))
      info.extra[key] = value;
  return info;
}

// Checks one expected tensor against the file; `owner` is "model" or "optimizer".
void check_expected(const SafetensorsFile& file, const std::string& name, const Tensor& expected,
                    const char* owner) {
  const SafetensorsEntry* entry = file.find(name);
  if (!entry) throw_checkpoint_error(file.path(), "{} is missing (the {} has it)", name, owner);
  if (entry->dtype != expected.dtype())
    throw_checkpoint_error(file.path(), "{} is {}, the {} expects {}", name,
                           safetensors_dtype_name(entry->dtype), owner,
                           safetensors_dtype_name(expected.dtype()));
  if (entry->shape != expected.shape())
    throw_checkpoint_error(file.path(), "{} is {}, the {} expects {}", name, shape_str(entry->shape), owner,
                           shape_str(expected.shape()));
}
}  // namespace

void save_checkpoint(const std::string& path, const NamedTensors& model_state,
                     const NamedTensors& optimizer_state, const CheckpointInfo& info) {
  std::map<std::string, std::string> metadata = {{"format", "kindling"},
                                                 {"format_version", std::to_string(kCheckpointFormatVersion)},
                                                 {"model", info.model},
                                                 {"model_config", info.model_config},
                                                 {"loss", info.loss},
                                                 {"epoch", std::to_string(info.epoch)},
                                                 {"step", std::to_string(info.step)},
                                                 {"rng_seed", std::to_string(info.rng.seed)},
                                                 {"rng_counter", std::to_string(info.rng.counter)}};
  for (const auto& [key, value] : info.extra)
    if (!metadata.emplace(key, value).second)
      throw_checkpoint_error(path, "extra metadata key {} is reserved", key);
  NamedTensors all = model_state;
  for (const auto& [name, tensor] : optimizer_state) all.emplace_back(kOptimizerPrefix + name, tensor);
  write_safetensors(path, all, metadata);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  return info_from_metadata(path, file.metadata());
}

CheckpointInfo load_checkpoint(const std::string& path, const NamedTensors& model_state,
                               const NamedTensors& optimizer_state) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  const CheckpointInfo info = info_from_metadata(path, file.metadata());
  for (const auto& [name, tensor] : model_state) check_expected(file, name, tensor, "model");
  for (const auto& [name, tensor] : optimizer_state)
    check_expected(file, kOptimizerPrefix + name, tensor, "optimizer");

  std::set<std::string> expected;
  for (const auto& [name, tensor] : model_state) expected.insert(name);
  for (const auto& [name, tensor] : optimizer_state) expected.insert(kOptimizerPrefix + name);
  const bool ignore_optimizer = optimizer_state.empty();
  for (const SafetensorsEntry& e : file.entries()) {
    if (expected.count(e.name)) continue;
    if (ignore_optimizer && e.name.rfind(kOptimizerPrefix, 0) == 0) continue;
    throw_checkpoint_error(path, "has an unexpected tensor {} ({}{})", e.name,
                           safetensors_dtype_name(e.dtype), shape_str(e.shape));
  }

  NoGradGuard no_grad;
  auto copy_in = [&](const std::string& name, const Tensor& destination) {
    Tensor target = destination;
    target.copy_(file.tensor(name));
  };
  for (const auto& [name, tensor] : model_state) copy_in(name, tensor);
  for (const auto& [name, tensor] : optimizer_state) copy_in(kOptimizerPrefix + name, tensor);
  return info;
}

}  // namespace kindling
