// Runs under an LD_PRELOAD library (tests/fault_inject.cpp) that makes write, fsync, rename and open
// fail: a full disk, a failing device or a read-only folder gives one line naming the path, leaves
// no temporary, and the run resumes to the uninterrupted end once the disk is back.
#include "tests/test_runs_util.h"

#include <doctest/doctest.h>

using namespace kindling;
using namespace kindling::test;

#ifndef KINDLING_SANITIZE
TEST_CASE("fault injection: full disk, failing fsync and rename, unwritable files: one line, resumable") {
  TempDir dir;
  const auto expected = uninterrupted_run(dir);
  struct Case {
    std::string fault, match;
  };
  const std::vector<Case> cases = {{"write@1", "/"},
                                   {"write@40", "/"},
                                   {"write@200", "/"},
                                   {"write@300", "/"},
                                   {"fsync@3", "/"},
                                   {"fsync@6", "/"},
                                   {"rename@4", "/"},
                                   {"rename@7", "/"},
                                   {"open@5", "/"},
                                   {"write@1", "metrics.jsonl"},
                                   {"write@2", "metrics.jsonl"},
                                   {"fsync@1", "config.json"}};
  for (const Case& c : cases) {
    INFO(c.fault, " on ", c.match);
    const fs::path out = dir / fmt::format("fault-{}-{}", c.fault, c.match == "/" ? "any" : c.match);
    const std::string env =
        fmt::format("LD_PRELOAD='{}' KINDLING_FAULT='{}' KINDLING_FAULT_MATCH='{}'", KINDLING_FAULT_LIBRARY,
                    c.fault, (out / "").string() + (c.match == "/" ? "" : c.match));
    const Run failed = train(dir, out, "", env);
    INFO(failed.err);
    CHECK(failed.status == 1);
    CHECK(line_count(failed.err) == 1);
    CHECK(contains(failed.err, out.string()));
    CHECK(temporaries_in(out).empty());
    check_never_ahead(out);
    // The disk is back: the run finishes as the uninterrupted one did.
    finish(dir, out);
    check_same_metrics(out, expected);
  }
}

TEST_CASE("fault injection: a read-only --out is refused before any training") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "readonly";
  fs::create_directories(out);
  const std::string env = fmt::format("LD_PRELOAD='{}' KINDLING_FAULT=readonly KINDLING_FAULT_MATCH='{}'",
                                      KINDLING_FAULT_LIBRARY, (out / "").string());
  const Run refused = kindling_cli(
      fmt::format("train {} --data-dir '{}' --epochs 3 --out '{}'",
                  std::string(kRun).replace(kRun.find(" --quiet"), 8, ""), dir.path.string(), out.string()),
      dir.path, env);
  INFO(refused.err);
  CHECK(refused.status == 1);
  CHECK(line_count(refused.err) == 1);
  CHECK(contains(refused.err, "--out " + out.string()));
  CHECK(contains(refused.err, "Read-only file system"));
  CHECK(!contains(refused.out, "epoch 1/3"));  // refused before the first epoch
}
#else
TEST_CASE("fault injection") {
  MESSAGE("skipped in the sanitizer build: the LD_PRELOAD library cannot load before the sanitizer runtime");
}
#endif
