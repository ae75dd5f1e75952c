// Helpers of the interop tests (PyTorch, ONNX): scratch folders, the Python that has a module,
// and a batch of evaluation images (the Fashion-MNIST test set when installed, else random).
#pragma once
#include "core/error.h"
#include "core/tensor.h"
#include "data/datasets.h"
#include "data/loader.h"
#include "ops/ops.h"

#include <cstdlib>
#include <filesystem>
#include <string>

namespace kindling::interop_test {

// A fresh directory per test case, so ctest -j cannot mix their files.
inline std::string scratch_dir(const std::string& test) {
  const auto dir = std::filesystem::path(KINDLING_BINARY_DIR) / "test_interop_files" / test;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline std::string source_path(const std::string& relative) {
  return std::string(KINDLING_SOURCE_DIR) + "/" + relative;
}

// The first Python that imports every module of `modules` ("torch", "onnx, onnxruntime"), Debian's
// /usr/bin/python3 first (a virtual environment earlier on PATH may lack them); "" when none does.
inline std::string python_with(const std::string& modules) {
  for (const char* python : {"/usr/bin/python3", "python3"}) {
    const std::string probe = std::string(python) + " -c 'import " + modules + "' > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return python;
  }
  return "";
}
inline std::string torch_python() { return python_with("torch"); }

struct EvalInputs {
  Tensor images;  // f32 [n, 1, 28, 28], normalised as training normalises them
  Tensor labels;  // i64 [n]
};

inline EvalInputs eval_inputs(int64_t n) {
  try {
    const data::ImageDataset test_set = data::load_dataset("fashion-mnist", false);
    data::Loader loader(test_set, {.batch_size = n, .shuffle = false, .augment = false, .num_workers = 0});
    auto batch = loader.next();
    return {batch->images, batch->labels};
  } catch (const FileError&) {
    Generator generator(11);
    Tensor labels = argmax(rand({n, 10}, {}, &generator), 1);
    return {randn({n, 1, 28, 28}, {}, &generator), labels};
  }
}

inline double max_abs_difference(const Tensor& a, const Tensor& b) {
  return max(abs(sub(a, b))).item<float>();
}

inline double accuracy(const Tensor& logits, const Tensor& labels) {
  return mean(eq(argmax(logits, 1), labels)).item<float>();
}

}  // namespace kindling::interop_test
