// Helpers of the command-line tests: run the kindling binary with its output captured, write a
// tiny MNIST-format dataset, read metrics.jsonl, list the temporaries a write left.
#pragma once
#include "core/atomic_file.h"
#include "tests/test_data_files.h"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace kindling::test {

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs `kindling <args>` with stdout and stderr captured to files; `env` ("NAME=value ...") is set
// for it alone. The status is the exit code, or 128 + the signal that killed it.
inline Run kindling_cli(const std::string& args, const fs::path& dir, const std::string& env = "") {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string command = fmt::format("KINDLING_NUM_THREADS=2 {} '{}' {} >'{}' 2>'{}' </dev/null", env,
                                          KINDLING_BIN, args, out.string(), err.string());
  const int raw = std::system(command.c_str());
  Run run;
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : WIFSIGNALED(raw) ? 128 + WTERMSIG(raw) : -1;
  auto slurp = [](const fs::path& p) {
    const auto bytes = read_bytes(p);
    return std::string(bytes.begin(), bytes.end());
  };
  run.out = slurp(out);
  run.err = slurp(err);
  return run;
}

// An MNIST-format dataset whose class k is an image with a bright band at rows 2k..2k+2, plus
// noise, so a small network learns it in an epoch.
inline void write_tiny_mnist(const fs::path& dir, int64_t train_count, int64_t test_count) {
  auto make = [&](const std::string& prefix, int64_t count, uint32_t seed) {
    std::vector<uint8_t> images(static_cast<size_t>(count * 28 * 28));
    std::vector<uint8_t> labels(static_cast<size_t>(count));
    uint32_t state = seed;
    for (int64_t i = 0; i < count; ++i) {
      const int label = int(i % 10);
      labels[size_t(i)] = uint8_t(label);
      for (int64_t p = 0; p < 28 * 28; ++p) {
        state = state * 1664525u + 1013904223u;
        const int64_t row = p / 28;
        const bool band = row >= 2 * label + 4 && row < 2 * label + 7;
        images[size_t(i * 784 + p)] = uint8_t(band ? 200 + (state >> 28) : (state >> 27));
      }
    }
    write_gzip(dir / (prefix + "-images-idx3-ubyte.gz"), idx_bytes({uint32_t(count), 28, 28}, images));
    write_gzip(dir / (prefix + "-labels-idx1-ubyte.gz"), idx_bytes({uint32_t(count)}, labels));
  };
  make("train", train_count, 1);
  make("t10k", test_count, 2);
}

inline std::vector<nlohmann::json> jsonl(const fs::path& file) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

inline const char* kTiny = "--data mnist --model resnet20 --batch-size 32 --lr 0.05 --quiet --threads 2";

// The AtomicFile temporaries left in `dir` (none after any write, finished or failed).
inline std::vector<std::string> temporaries_in(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir))
    if (is_atomic_temporary(entry.path().filename().string())) found.push_back(entry.path().string());
  return found;
}

inline int line_count(const std::string& text) { return int(std::count(text.begin(), text.end(), '\n')); }

}  // namespace kindling::test
