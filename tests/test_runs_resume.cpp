// Runs that survive a kill: one writer per output folder, a kill at every write point of an epoch
// followed by a resume that matches an uninterrupted run, a lost best.safetensors restored, and a
// study killed at each point.
#include "core/safetensors.h"
#include "tests/test_runs_util.h"

#include <doctest/doctest.h>

using namespace kindling;
using namespace kindling::test;

namespace {

// Every f32 tensor and the epoch of two checkpoints are equal.
void check_same_checkpoint(const fs::path& a_path, const fs::path& b_path) {
  INFO(a_path.string(), " vs ", b_path.string());
  const auto a = SafetensorsFile::read(a_path.string()), b = SafetensorsFile::read(b_path.string());
  CHECK(a.metadata().at("epoch") == b.metadata().at("epoch"));
  REQUIRE(a.entries().size() == b.entries().size());
  for (const auto& entry : a.entries())
    if (entry.dtype == DType::f32)
      CHECK_MESSAGE(a.tensor(entry.name).to_vector<float>() == b.tensor(entry.name).to_vector<float>(),
                    entry.name);
}

}  // namespace

TEST_CASE("a second run on a folder in use stops at once, naming the folder and the process") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "run";
  const std::string args =
      fmt::format("train {} --data-dir '{}' --epochs 1 --out '{}'", kRun, dir.path.string(), out.string());
  const pid_t first = start_stopped(args, "batch");
  const Run second = kindling_cli(args, dir.path);
  kill(first, SIGKILL);
  waitpid(first, nullptr, 0);
  INFO(second.err);
  CHECK(second.status == 1);
  CHECK(line_count(second.err) == 1);
  CHECK(contains(second.err, out.string()));
  CHECK(contains(second.err, fmt::format("process {}", first)));
  CHECK(!fs::exists(out / "last.safetensors"));  // the second run wrote nothing
  // Once the holder is gone, the folder is free again.
  CHECK(kindling_cli(args, dir.path).status == 0);
}

TEST_CASE("killed at any write point of an epoch, a resumed run ends as an uninterrupted one") {
  TempDir dir;
  const auto expected = uninterrupted_run(dir);
  const fs::path straight = dir / "straight";
  // Epoch 2's points in write order, a rename of a finished temporary, and writes inside epoch 1's last
  // and best and epoch 2's last (a checkpoint is 236 writes; 3 come before the first). The sanitizer
  // build, ten times slower, visits the three that leave the folder most out of step.
#ifndef KINDLING_SANITIZE
  const char* const points[] = {"checkpoint-last@2", "atomic-rename@6", "checkpoint-best@2",
                                "metrics-line@2",    "epoch-end@2",     "atomic-write@100",
                                "atomic-write@400",  "atomic-write@600"};
#else
  const char* const points[] = {"checkpoint-best@2", "metrics-line@2", "atomic-write@600"};
#endif
  for (const char* point : points) {
    INFO(std::string(point));
    const fs::path out = dir / fmt::format("killed-{}", point);
    const Run killed = train(dir, out, "", fmt::format("KINDLING_TEST_POINT={}:kill", point));
    REQUIRE(killed.status == 128 + SIGKILL);
    check_never_ahead(out);
    finish(dir, out);
    CHECK(temporaries_in(out).empty());
    check_same_metrics(out, expected);
    check_same_checkpoint(out / "last.safetensors", straight / "last.safetensors");
    check_same_checkpoint(out / "best.safetensors", straight / "best.safetensors");
  }
}

TEST_CASE("a missing or stale best.safetensors is restored on resume when the checkpoint is the best") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "run";
  REQUIRE(train(dir, out, "--stop-after-epochs 1").status == 0);
  // As if the run died between the last and best writes of its first epoch.
  fs::remove(out / "best.safetensors");
  const std::string verbose = std::string(kRun).replace(kRun.find(" --quiet"), 8, "");
  const Run resumed =
      kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 2 --out '{}' --resume '{}'", verbose,
                               dir.path.string(), out.string(), (out / "last.safetensors").string()),
                   dir.path);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK(contains(resumed.out, "best.safetensors restored from"));
  CHECK(fs::exists(out / "best.safetensors"));
}

TEST_CASE("a study killed at any point finishes, when rerun, with the uninterrupted study's table") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  auto study = [&](const fs::path& out, const std::string& env) {
    return kindling_cli(
        fmt::format("study {} --data-dir '{}' --epochs 1 --losses ce --seeds 2 --val-split 0.25 --out '{}'",
                    kRun, dir.path.string(), out.string()),
        dir.path, env);
  };
  // The seeds' top-1 and fitted temperatures.
  auto top1 = [](const fs::path& out) {
    std::ifstream in(out / "study.json");
    const auto loss = nlohmann::json::parse(in)["losses"][0];
    return std::make_pair(loss["top1"], loss["last"]["temperature"]["values"]);
  };
  const fs::path straight = dir / "straight";
  REQUIRE(study(straight, "").status == 0);
  // Before a run's checkpoint, after it, after its metrics line, after its last write (before
  // done.json: the run is complete but not marked), and in the second run.
  for (const char* point : {"checkpoint-last@1", "checkpoint-best@1", "metrics-line@1", "epoch-end@1",
                            "epoch-end@2", "atomic-rename@12"}) {
    INFO(std::string(point));
    const fs::path out = dir / fmt::format("killed-{}", point);
    REQUIRE(study(out, fmt::format("KINDLING_TEST_POINT={}:kill", point)).status == 128 + SIGKILL);
    const Run rerun = study(out, "");
    INFO(rerun.err);
    REQUIRE(rerun.status == 0);
    CHECK(top1(out) == top1(straight));
    for (const char* run : {"ce-seed0", "ce-seed1"})
      CHECK(epochs_of(out / "runs" / run / "metrics.jsonl") == std::vector<int64_t>{1});
    CHECK(temporaries_in(out).empty());
  }
}
