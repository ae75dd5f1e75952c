// Helpers of the checkpoint tests (test_safetensors.cpp, test_checkpoint.cpp): scratch folders,
// whole-file reads and writes, hand-made safetensors bytes, and the text of a FileError.
#pragma once
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/tensor.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace kindling::checkpoint_test {

// A fresh directory per test case, so ctest -j cannot mix their files.
inline std::string scratch(const std::string& test) {
  const std::filesystem::path dir =
      std::filesystem::path(KINDLING_BINARY_DIR) / "test_checkpoint_files" / test;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The AtomicFile temporaries left in `dir` (none, after any write, failed or not).
inline std::vector<std::string> temporaries_in(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (is_atomic_temporary(entry.path().filename().string())) found.push_back(entry.path().string());
  return found;
}

inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// A safetensors file from a header text and a data section, for the corrupt-file cases.
inline std::string file_bytes(const std::string& header, const std::string& data, uint64_t header_size) {
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &header_size, 8);
  return bytes + header + data;
}
inline std::string file_bytes(const std::string& header, const std::string& data) {
  return file_bytes(header, data, header.size());
}

template <typename Fn>
inline std::string error_text(Fn fn) {
  try {
    fn();
  } catch (const FileError& e) {
    return e.what();
  } catch (const Error& e) {
    return std::string("(not a FileError) ") + e.what();
  }
  return "(no error)";
}

inline std::string bytes_of(const Tensor& t) {
  const Tensor host = t.detach().contiguous();
  return std::string(static_cast<const char*>(host.data_ptr()),
                     size_t(host.numel()) * dtype_size(host.dtype()));
}

}  // namespace kindling::checkpoint_test
