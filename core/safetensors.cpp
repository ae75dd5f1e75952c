// Reading and writing the safetensors format (core/safetensors.h): the header's JSON, dtypes and
// byte offsets, validated before any tensor is handed out.
#include "core/safetensors.h"

#include "core/atomic_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

namespace kindling {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

const char* safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "F32";
    case DType::i64:
      return "I64";
    case DType::u8:
      return "U8";
    case DType::bf16:
      return "BF16";
  }
  return "?";
}

namespace {

// Every error below names the file: "checkpoint <path>: ...".
template <typename... Args>
[[noreturn]] void fail(const std::string& path, fmt::format_string<Args...> format, Args&&... args) {
  throw_checkpoint_error(path, format, std::forward<Args>(args)...);
}

bool parse_dtype(const std::string& name, DType& dtype) {
  for (DType d : {DType::f32, DType::i64, DType::u8, DType::bf16})
    if (name == safetensors_dtype_name(d)) {
      dtype = d;
      return true;
    }
  return false;
}

// ---- reading helpers ----
std::vector<char> read_whole_file(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail(path, "cannot open for reading ({})", std::strerror(errno));
  std::vector<char> bytes;
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0)
    bytes.insert(bytes.end(), buffer, buffer + got);
  const bool failed = std::ferror(file);
  std::fclose(file);
  if (failed) fail(path, "read error");
  return bytes;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& info,
                             uint64_t data_size) {
  SafetensorsEntry entry;
  entry.name = name;
  if (!info.is_object()) fail(path, "header entry {} is not an object", name);
  if (!info.contains("dtype") || !info["dtype"].is_string())
    fail(path, "tensor {} has no dtype string", name);
  const std::string dtype = info["dtype"];
  if (!parse_dtype(dtype, entry.dtype))
    fail(path, "tensor {} has dtype {}; kindling reads F32, I64, U8 and BF16", name, dtype);

  if (!info.contains("shape") || !info["shape"].is_array()) fail(path, "tensor {} has no shape array", name);
  uint64_t numel = 1;
  for (const auto& dim : info["shape"]) {
    if (!dim.is_number_unsigned())
      fail(path, "tensor {} has a shape entry {} that is not a size", name, dim.dump());
    const uint64_t size = dim.get<uint64_t>();
    // Sizes beyond the file are rejected below; this only stops the product from overflowing.
    if (size != 0 && numel > (uint64_t(1) << 62) / size)
      fail(path, "tensor {} has an impossibly large shape", name);
    numel *= size;
    entry.shape.push_back(int64_t(size));
  }

  const auto& offsets = info.contains("data_offsets") ? info["data_offsets"] : nlohmann::json();
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail(path, "tensor {} has no data_offsets [begin, end] of two byte offsets", name);
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_size)
    fail(path, "tensor {} has data_offsets [{},{}] outside the {} bytes of data", name, entry.begin,
         entry.end, data_size);
  const uint64_t needed = numel * dtype_size(entry.dtype);
  if (entry.end - entry.begin != needed)
    fail(path, "tensor {} ({}{}) needs {} bytes but data_offsets [{},{}] hold {}", name, dtype,
         shape_str(entry.shape), needed, entry.begin, entry.end, entry.end - entry.begin);
  return entry;
}

}  // namespace

// ---- SafetensorsFile ----
SafetensorsFile SafetensorsFile::read(const std::string& path) {
  std::vector<char> bytes = read_whole_file(path);
  if (bytes.size() < 8) fail(path, "file is {} bytes, too short for the 8-byte header length", bytes.size());
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > bytes.size() - 8)
    fail(path,
         "header length {} exceeds the {} bytes that follow it (truncated or not a safetensors "
         "file)",
         header_size, bytes.size() - 8);

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + int64_t(header_size));
  } catch (const nlohmann::json::exception& e) {
    fail(path, "header is not valid JSON ({})", e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  SafetensorsFile file;
  file.path_ = path;
  const uint64_t data_size = bytes.size() - 8 - header_size;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail(path, "__metadata__ value of {} is not a string", key);
        file.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    file.entries_.push_back(parse_entry(path, name, info, data_size));
  }
  // The format requires the tensors to tile the data exactly.
  std::stable_sort(file.entries_.begin(), file.entries_.end(),
                   [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.begin < b.begin; });
  uint64_t expected_begin = 0;
  for (const SafetensorsEntry& e : file.entries_) {
    if (e.begin != expected_begin)
      fail(path,
           "tensor {} starts at byte {} of the data, expected {} (tensors must not overlap or "
           "leave gaps)",
           e.name, e.begin, expected_begin);
    expected_begin = e.end;
  }
  if (expected_begin != data_size)
    fail(path, "{} bytes of data follow the last tensor (the file is not a valid safetensors file)",
         data_size - expected_begin);
  file.data_offset_ = 8 + header_size;
  file.bytes_ = std::move(bytes);
  return file;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  for (const SafetensorsEntry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (!e) fail(path_, "has no tensor {}", name);
  Tensor out = empty(e->shape, TensorOptions{}.with_dtype(e->dtype));
  if (e->end > e->begin)
    std::memcpy(out.data_ptr(), bytes_.data() + data_offset_ + e->begin, e->end - e->begin);
  return out;
}

// ---- write_safetensors ----
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Everything is checked and laid out before the temporary file is opened.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__" || !names.insert(name).second)
      fail(path, "tensor name '{}' is empty, reserved or repeated", name);
    if (!tensor.defined()) fail(path, "tensor {} is undefined", name);
    const uint64_t size = uint64_t(tensor.numel()) * dtype_size(tensor.dtype());
    header[name] = {{"dtype", safetensors_dtype_name(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // aligns the data to 8 bytes
  const uint64_t header_size = header_text.size();

  AtomicFile file(path, "checkpoint " + path);
  file.write(&header_size, 8);
  file.write(header_text);
  for (const auto& [name, tensor] : tensors) {
    const Tensor host = tensor.detach().to(Device::cpu()).contiguous();
    file.write(host.data_ptr(), size_t(host.numel()) * dtype_size(host.dtype()));
  }
  file.commit();
}

}  // namespace kindling
