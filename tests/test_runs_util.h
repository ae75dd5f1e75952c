// Helpers of the run tests (tests/test_runs_*.cpp): train, resume and finish a three-epoch run on
// the tiny dataset, compare its metrics with an uninterrupted run's, check that a folder a run died
// in is never ahead of its checkpoint, and start a run stopped at a test point.
#pragma once
#include "core/safetensors.h"
#include "tests/cli_helpers.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

namespace kindling::test {

inline const std::string kRun = std::string(kTiny) + " --deterministic --limit-train 64 --limit-test 32";

// `kindling train` of three epochs into `out`, with `extra` flags and `env`.
inline Run train(const TempDir& dir, const fs::path& out, const std::string& extra = "",
                 const std::string& env = "") {
  return kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 3 --out '{}' {}", kRun,
                                  dir.path.string(), out.string(), extra),
                      dir.path, env);
}

inline Run resume(const TempDir& dir, const fs::path& out) {
  return train(dir, out, fmt::format("--resume '{}'", (out / "last.safetensors").string()));
}

// Brings an interrupted run to its end: resumes it, or starts it again when it died before its
// first checkpoint.
inline void finish(const TempDir& dir, const fs::path& out) {
  const Run run = fs::exists(out / "last.safetensors") ? resume(dir, out) : train(dir, out);
  INFO(run.err);
  REQUIRE(run.status == 0);
}

inline std::vector<int64_t> epochs_of(const fs::path& metrics) {
  std::vector<int64_t> epochs;
  for (const auto& row : jsonl(metrics)) epochs.push_back(row["epoch"].get<int64_t>());
  return epochs;
}

// The metrics a run computes (not its timings).
inline nlohmann::json results_of(nlohmann::json row) {
  row.erase("seconds");
  row.erase("images_per_s");
  return row;
}

// Writes the tiny dataset into `dir` and trains the uninterrupted three epochs into dir/straight;
// returns their metrics.
inline std::vector<nlohmann::json> uninterrupted_run(const TempDir& dir) {
  write_tiny_mnist(dir.path, 64, 32);
  REQUIRE(train(dir, dir / "straight").status == 0);
  const auto rows = jsonl(dir / "straight" / "metrics.jsonl");
  REQUIRE(rows.size() == 3);
  return rows;
}

// out/metrics.jsonl holds the uninterrupted run's three epochs with the same values.
inline void check_same_metrics(const fs::path& out, const std::vector<nlohmann::json>& expected) {
  const auto rows = jsonl(out / "metrics.jsonl");
  REQUIRE(rows.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(results_of(rows[i]) == results_of(expected[i]));
}

// Whatever moment a run died at: no temporaries once the folder is reopened, and metrics.jsonl
// never holds an epoch the last checkpoint lacks.
inline void check_never_ahead(const fs::path& out) {
  if (!fs::exists(out / "metrics.jsonl")) return;
  const fs::path last = out / "last.safetensors";
  const int64_t saved =
      fs::exists(last) ? int64_t(std::stoll(SafetensorsFile::read(last.string()).metadata().at("epoch"))) : 0;
  for (int64_t epoch : epochs_of(out / "metrics.jsonl")) CHECK(epoch <= saved);
}

// Starts `kindling <args>` with KINDLING_TEST_POINT=<point>:stop and waits until it has stopped
// itself there; returns its pid.
inline pid_t start_stopped(const std::string& args, const std::string& point) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setenv("KINDLING_TEST_POINT", (point + ":stop").c_str(), 1);
    execl("/bin/sh", "sh", "-c", fmt::format("exec '{}' {} >/dev/null 2>&1", KINDLING_BIN, args).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, WUNTRACED) == pid);
  REQUIRE(WIFSTOPPED(status));
  return pid;
}

}  // namespace kindling::test
