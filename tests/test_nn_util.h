// Helpers of the nn tests: the names of a state_dict and its tensors looked up by name.
#pragma once
#include "nn/module.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace kindling::test {

inline std::vector<std::string> names_of(const NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : tensors) names.push_back(name);
  return names;
}

inline bool has_name(const NamedTensors& tensors, const std::string& name) {
  return find_tensor(tensors, name) != nullptr;
}

// The tensor `name`; fails the test when there is none.
inline const Tensor& named(const NamedTensors& tensors, const std::string& name) {
  const Tensor* t = find_tensor(tensors, name);
  INFO("tensor ", name);
  REQUIRE(t != nullptr);
  return *t;
}

}  // namespace kindling::test
