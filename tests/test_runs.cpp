// Runs that survive anything: one writer per output folder, a kill at every write point of an epoch
// followed by a resume that matches an uninterrupted run, a study killed at each point, the numeric
// flag table, SIGINT and SIGTERM during a write, and, under an LD_PRELOAD library, full disks and
// failing fsync, rename and folder creation.
#include "core/checkpoint.h"
#include "tests/cli_helpers.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

using namespace kindling;
using namespace kindling::test;

namespace {

const std::string kRun = std::string(kTiny) + " --deterministic --limit-train 64 --limit-test 32";

// `kindling train` of three epochs into `out`, with `extra` flags and `env`.
Run train(const TempDir& dir, const fs::path& out, const std::string& extra = "",
          const std::string& env = "") {
  return kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 3 --out '{}' {}", kRun,
                                  dir.path.string(), out.string(), extra),
                      dir.path, env);
}

Run resume(const TempDir& dir, const fs::path& out) {
  return train(dir, out, fmt::format("--resume '{}'", (out / "last.safetensors").string()));
}

// Brings an interrupted run to its end: resumes it, or starts it again when it died before its
// first checkpoint.
void finish(const TempDir& dir, const fs::path& out) {
  const Run run = fs::exists(out / "last.safetensors") ? resume(dir, out) : train(dir, out);
  INFO(run.err);
  REQUIRE(run.status == 0);
}

std::vector<int64_t> epochs_of(const fs::path& metrics) {
  std::vector<int64_t> epochs;
  for (const auto& row : jsonl(metrics)) epochs.push_back(row["epoch"].get<int64_t>());
  return epochs;
}

// The metrics a run computes (not its timings).
nlohmann::json results_of(nlohmann::json row) {
  row.erase("seconds");
  row.erase("images_per_s");
  return row;
}

// Writes the tiny dataset into `dir` and trains the uninterrupted three epochs into dir/straight;
// returns their metrics.
std::vector<nlohmann::json> uninterrupted_run(const TempDir& dir) {
  write_tiny_mnist(dir.path, 64, 32);
  REQUIRE(train(dir, dir / "straight").status == 0);
  const auto rows = jsonl(dir / "straight" / "metrics.jsonl");
  REQUIRE(rows.size() == 3);
  return rows;
}

// out/metrics.jsonl holds the uninterrupted run's three epochs with the same values.
void check_same_metrics(const fs::path& out, const std::vector<nlohmann::json>& expected) {
  const auto rows = jsonl(out / "metrics.jsonl");
  REQUIRE(rows.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(results_of(rows[i]) == results_of(expected[i]));
}

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

// Whatever moment a run died at: no temporaries once the folder is reopened, and metrics.jsonl
// never holds an epoch the last checkpoint lacks.
void check_never_ahead(const fs::path& out) {
  if (!fs::exists(out / "metrics.jsonl")) return;
  const int64_t saved =
      fs::exists(out / "last.safetensors")
          ? int64_t(
                std::stoll(SafetensorsFile::read((out / "last.safetensors").string()).metadata().at("epoch")))
          : 0;
  for (int64_t epoch : epochs_of(out / "metrics.jsonl")) CHECK(epoch <= saved);
}

// Starts `kindling <args>` with KINDLING_TEST_POINT=<point>:stop and waits until it has stopped
// itself there; returns its pid.
pid_t start_stopped(const std::string& args, const std::string& point) {
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
  const char* const points[] = {"checkpoint-last@2", "atomic-rename@6", "checkpoint-best@2", "metrics-line@2",
                                "epoch-end@2",       "atomic-write@100", "atomic-write@400", "atomic-write@600"};
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

TEST_CASE("a one-epoch study plots, and a failing gnuplot is reported with no empty curves.png") {
  TempDir dir;
  write_tiny_mnist(dir.path, 32, 16);
  const std::string args = fmt::format("study {} --data-dir '{}' --epochs 1 --losses ce --seeds 1 --out '{}'",
                                       kRun, dir.path.string(), (dir / "study").string());
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    const Run plotted = kindling_cli(args, dir.path);
    INFO(plotted.err);
    REQUIRE(plotted.status == 0);
    CHECK(fs::file_size(dir / "study" / "curves.png") > 0);
    fs::remove(dir / "study" / "curves.png");
  } else {
    MESSAGE("gnuplot is not installed: the one-epoch plot is not rendered here");
  }
  // A gnuplot that fails as gnuplot does, with its own message.
  fs::create_directories(dir / "bin");
  write_bytes(dir / "bin" / "gnuplot", {});
  std::ofstream(dir / "bin" / "gnuplot")
      << "#!/bin/sh\necho '\"curves.gp\" line 9: all points y value undefined!' >&2\n"
         "exit 1\n";
  fs::permissions(dir / "bin" / "gnuplot", fs::perms::owner_all);
  const Run failed = kindling_cli(args, dir.path, fmt::format("PATH='{}':\"$PATH\"", (dir / "bin").string()));
  INFO(failed.err);
  CHECK(failed.status == 0);  // the study itself is complete
  CHECK(contains(failed.err, "all points y value undefined"));
  CHECK(!contains(failed.out + failed.err, "not found"));
  CHECK(!fs::exists(dir / "study" / "curves.png"));
  CHECK(temporaries_in(dir / "study").empty());
}

TEST_CASE("every numeric flag out of range or not finite: exit 2, one line naming the flag and the range") {
  TempDir dir;
  struct Case {
    const char* args;
    const char* flag;
    const char* range;
  };
  const Case cases[] = {
      {"train --batch-size 0", "--batch-size", "a whole number from 1 up"},
      {"train --lr abc", "--lr", "a finite number above 0"},
      {"train --lr nan", "--lr", "a finite number above 0"},
      {"train --lr inf", "--lr", "a finite number above 0"},
      {"train --momentum nan", "--momentum", "a finite number from 0 to 1"},
      {"train --warmup nan", "--warmup", "a finite number from 0 up"},
      {"train --val-split nan", "--val-split", "a finite number at least 0 and below 1"},
      {"train --val-split 1", "--val-split", "a finite number at least 0 and below 1"},
      {"study --val-split -0.1", "--val-split", "a finite number at least 0 and below 1"},
      {"train --clip-grad-norm nan", "--clip-grad-norm", "a finite number from 0 up"},
      {"train --weight-decay -1", "--weight-decay", "a finite number from 0 up"},
      {"train --gamma 0", "--gamma", "a finite number above 0"},
      {"train --epochs 1.5", "--epochs", "a whole number from 1 up"},
      {"train --milestones 3,x --schedule multistep", "--milestones", "a whole number from 1 up"},
      {"train --threads 1000", "--threads", "a whole number from 0 to 256"},
      {"train --seed -1", "--seed", "a whole number from 0 to 18446744073709551615"},
      {"train --limit-train -5", "--limit-train", "a whole number from 0 up"},
      {"eval --checkpoint x --workers 0", "--workers", "a whole number from 1 to 64"},
      {"study --seeds 0", "--seeds", "a whole number from 1 to 1000"},
      {"study --losses ''", "--losses", "no loss given"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.args));
    // A dataset folder that does not exist: a flag let through fails fast instead of training.
    const Run run = kindling_cli(std::string(c.args) + " --data-dir /nonexistent", dir.path);
    INFO(run.err);
    CHECK(run.status == 2);
    CHECK(line_count(run.err) == 1);
    CHECK(run.err.size() < 200);
    CHECK(contains(run.err, c.flag));
    CHECK(contains(run.err, c.range));
  }
  CHECK(!fs::exists(dir / "study"));  // the empty study wrote nothing
}

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

TEST_CASE(
    "a non-finite value names the epoch, the batch or the evaluation, and only a checkpoint that exists") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "run";
  // In epoch 1 there is no checkpoint to name.
  const Run first_epoch = train(dir, out, "--lr 1e30 --schedule constant");
  INFO(first_epoch.err);
  CHECK(first_epoch.status == 1);
  CHECK(contains(first_epoch.err, "epoch 1, batch"));
  CHECK(contains(first_epoch.err, "no checkpoint was written yet"));
  CHECK(!contains(first_epoch.err, "last.safetensors"));
  // Running means of -3e38 pass training (batch statistics) and overflow the evaluation.
  REQUIRE(train(dir, out, "--stop-after-epochs 1").status == 0);
  const std::string last = (out / "last.safetensors").string();
  const auto file = SafetensorsFile::read(last);
  NamedTensors tensors;
  for (const auto& entry : file.entries()) {
    Tensor t = file.tensor(entry.name);
    if (entry.name.find("running_mean") != std::string::npos) t = full(t.shape(), -3e38);
    tensors.emplace_back(entry.name, t);
  }
  write_safetensors(last, tensors, file.metadata());
  const Run in_eval = resume(dir, out);
  INFO(in_eval.err);
  CHECK(in_eval.status == 1);
  CHECK(line_count(in_eval.err) == 1);
  CHECK(contains(in_eval.err, "evaluation batch 1"));
  CHECK(contains(in_eval.err, "test set after epoch 2"));
  CHECK(contains(in_eval.err, "last.safetensors (epoch 1)"));
}

TEST_CASE("corrupt checkpoint metadata names the key and the file") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "run";
  REQUIRE(train(dir, out, "--stop-after-epochs 1").status == 0);
  const std::string last = (out / "last.safetensors").string();
  const auto file = SafetensorsFile::read(last);
  NamedTensors tensors;
  for (const auto& entry : file.entries()) tensors.emplace_back(entry.name, file.tensor(entry.name));
  auto metadata = file.metadata();
  metadata["best_accuracy"] = "abc";
  write_safetensors(last, tensors, metadata);
  const Run resumed = resume(dir, out);
  INFO(resumed.err);
  CHECK(resumed.status == 1);
  CHECK(contains(resumed.err, "best_accuracy='abc'"));
  CHECK(contains(resumed.err, last));
  CHECK(!contains(resumed.err, "stod"));
}

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
