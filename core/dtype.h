// Element types and devices. f32 carries all maths on both backends; i64 holds labels and indices;
// u8 holds raw images; bf16 is reserved for CUDA mixed precision.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kindling {

enum class DType : uint8_t { f32, i64, u8, bf16 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::u8;
}

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  // "cpu", "cuda", "cuda:1"; throws ValueError for anything else.
  static Device parse(const std::string& text);
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const;
  friend bool operator==(const Device&, const Device&) = default;
};

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  // "[2,3,4]"
int64_t shape_numel(const Shape& shape);

}  // namespace kindling
