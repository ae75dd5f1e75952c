// SIGINT and SIGTERM stop a run cleanly: a write in progress finishes, one line on stderr says how
// to resume, the exit code is 128 + the signal, and the folder resumes to the uninterrupted end.
#include "core/safetensors.h"
#include "tests/test_runs_util.h"

#include <doctest/doctest.h>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("SIGINT and SIGTERM during a write finish it, stop with one line, and exit 130 or 143") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  struct Case {
    const char* point;
    int signal;
  };
  // Inside epoch 1's last.safetensors (write 5 of it), and just before epoch 2's rename.
  for (const Case c : {Case{"atomic-write@8:int", SIGINT}, Case{"atomic-rename@6:term", SIGTERM}}) {
    INFO(std::string(c.point));
    const fs::path out = dir / fmt::format("run-{}", c.signal);
    const Run stopped = train(dir, out, "", fmt::format("KINDLING_TEST_POINT={}", c.point));
    INFO(stopped.err);
    CHECK(stopped.status == 128 + c.signal);
    CHECK(line_count(stopped.err) == 1);
    CHECK(contains(stopped.err, c.signal == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM"));
    CHECK(contains(stopped.err, "--resume " + (out / "last.safetensors").string()));
    CHECK(temporaries_in(out).empty());
    check_never_ahead(out);
    const auto saved = SafetensorsFile::read((out / "last.safetensors").string());  // whole and readable
    CHECK(std::to_string(epochs_of(out / "metrics.jsonl").size()) == saved.metadata().at("epoch"));
    CHECK(resume(dir, out).status == 0);
    CHECK(epochs_of(out / "metrics.jsonl") == std::vector<int64_t>{1, 2, 3});
  }
  // A signal from outside, while the run is between batches: it stops before its first checkpoint.
  const fs::path out = dir / "external";
  const pid_t pid = start_stopped(
      fmt::format("train {} --data-dir '{}' --epochs 3 --out '{}'", kRun, dir.path.string(), out.string()),
      "batch");
  kill(pid, SIGTERM);
  kill(pid, SIGCONT);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  CHECK(!fs::exists(out / "last.safetensors"));
  CHECK(temporaries_in(out).empty());
}
