// What a run reports when its input is wrong: the numeric flag table, a failing gnuplot, a
// non-finite value in training or evaluation, and corrupt checkpoint metadata; one line on stderr
// naming the flag, epoch, key or file.
#include "core/safetensors.h"
#include "tests/test_runs_util.h"

#include <doctest/doctest.h>

using namespace kindling;
using namespace kindling::test;

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
