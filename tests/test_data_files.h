// Helpers shared by the data tests: a per-test temporary directory and writers for the published
// file formats (IDX, CIFAR records, gzip through zlib's own gzwrite).
#pragma once
#include "core/error.h"

#include <doctest/doctest.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace kindling::test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = fs::temp_directory_path() /
           ("kindling-data-test-" + std::to_string(stamp) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& name) const { return path / name; }
};

inline void write_bytes(const fs::path& file, const std::vector<uint8_t>& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline void write_gzip(const fs::path& file, const std::vector<uint8_t>& bytes) {
  fs::create_directories(file.parent_path());
  gzFile gz = gzopen(file.string().c_str(), "wb");
  REQUIRE(gz != nullptr);
  if (!bytes.empty())
    REQUIRE(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(gz) == Z_OK);
}

inline std::vector<uint8_t> read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& bytes) {
  TempDir dir;
  write_gzip(dir / "x.gz", bytes);
  return read_bytes(dir / "x.gz");
}

// An IDX file of unsigned bytes: 00 00 08 <ndims>, big-endian dims, values.
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& values) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<uint8_t>(d >> shift));
  bytes.insert(bytes.end(), values.begin(), values.end());
  return bytes;
}

// Pixel n*7 + i*3 (mod 256) of image n: distinct across nearby pixels and images.
inline std::vector<uint8_t> pattern_images(int64_t count, int64_t numel) {
  std::vector<uint8_t> values(count * numel);
  for (int64_t n = 0; n < count; ++n)
    for (int64_t i = 0; i < numel; ++i) values[n * numel + i] = static_cast<uint8_t>(n * 7 + i * 3);
  return values;
}

// One CIFAR record: label byte(s) then 3072 image bytes.
inline void append_cifar_record(std::vector<uint8_t>& file, const std::vector<uint8_t>& label_bytes,
                                const uint8_t* image) {
  file.insert(file.end(), label_bytes.begin(), label_bytes.end());
  file.insert(file.end(), image, image + 3072);
}

// Runs fn, requires that it throws ErrorType, returns the message.
template <typename ErrorType = FileError, typename Fn>
std::string error_text(Fn&& fn) {
  try {
    fn();
  } catch (const ErrorType& e) {
    return e.what();
  }
  FAIL("expected an exception of the requested type");
  return "";
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace kindling::test
