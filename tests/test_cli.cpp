// The kindling binary end to end, on a tiny MNIST-format dataset the test writes: every subcommand,
// the files train writes, exact resume, bad flags, bad files, and the stop on a non-finite loss.
#include "core/safetensors.h"
#include "ops/cpu/peak.h"
#include "tests/cli_helpers.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <cstdio>
#include <fstream>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("train writes config, metrics, checkpoints, and eval reads them back") {
  TempDir dir;
  write_tiny_mnist(dir.path, 256, 128);
  const fs::path out = dir / "run";
  const Run train = kindling_cli(
      fmt::format("train {} --data-dir '{}' --epochs 2 --out '{}'", kTiny, dir.path.string(), out.string()),
      dir.path);
  INFO(train.err);
  REQUIRE(train.status == 0);
  CHECK(contains(train.out, "final test accuracy:"));
  CHECK(fs::exists(out / "config.json"));
  CHECK(fs::exists(out / "last.safetensors"));
  CHECK(fs::exists(out / "best.safetensors"));
  CHECK(temporaries_in(out).empty());
  const auto rows = jsonl(out / "metrics.jsonl");
  REQUIRE(rows.size() == 2);
  for (const char* key : {"epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                          "test_nll", "test_ece", "images_per_s", "seconds"})
    CHECK_MESSAGE(rows[1].contains(key), key);
  CHECK(rows[1]["epoch"] == 2);
  // The bands are easy: two epochs must beat chance (10 %) by far.
  CHECK(rows[1]["test_accuracy"].get<double>() > 0.5);
  std::ifstream config_in(out / "config.json");
  const nlohmann::json config = nlohmann::json::parse(config_in);
  CHECK(config["model"] == "resnet20");
  CHECK(config["crop_padding"] == 4);  // --crop-padding's default, the CIFAR recipe's

  const Run eval = kindling_cli(fmt::format("eval --checkpoint '{}' --data mnist --data-dir '{}' --json",
                                            (out / "last.safetensors").string(), dir.path.string()),
                                dir.path);
  INFO(eval.err);
  REQUIRE(eval.status == 0);
  const auto result = nlohmann::json::parse(eval.out);
  CHECK(result["samples"] == 128);
  CHECK(result["accuracy"].get<double>() ==
        doctest::Approx(rows[1]["test_accuracy"].get<double>()).epsilon(1e-6));
  for (const char* key : {"accuracy", "nll", "ece", "samples"}) CHECK(result.contains(key));
}

TEST_CASE("two epochs equal one epoch, a resume, and one more (deterministic CPU)") {
  TempDir dir;
  write_tiny_mnist(dir.path, 128, 64);
  const std::string common = fmt::format(
      "train {} --data-dir '{}' --epochs 2 --deterministic --schedule cosine", kTiny, dir.path.string());
  REQUIRE(kindling_cli(fmt::format("{} --out '{}'", common, (dir / "straight").string()), dir.path).status ==
          0);
  REQUIRE(kindling_cli(fmt::format("{} --out '{}' --stop-after-epochs 1", common, (dir / "sliced").string()),
                       dir.path)
              .status == 0);
  CHECK(jsonl(dir / "sliced" / "metrics.jsonl").size() == 1);
  const Run resumed =
      kindling_cli(fmt::format("{} --out '{}' --resume '{}'", common, (dir / "sliced").string(),
                               (dir / "sliced" / "last.safetensors").string()),
                   dir.path);
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  CHECK(jsonl(dir / "sliced" / "metrics.jsonl").size() == 2);
  const auto a = SafetensorsFile::read((dir / "straight" / "last.safetensors").string());
  const auto b = SafetensorsFile::read((dir / "sliced" / "last.safetensors").string());
  REQUIRE(a.entries().size() == b.entries().size());
  for (const auto& entry : a.entries()) {
    if (entry.dtype != DType::f32) continue;
    const auto x = a.tensor(entry.name).to_vector<float>(), y = b.tensor(entry.name).to_vector<float>();
    CHECK_MESSAGE(x == y, entry.name);
  }
  CHECK(a.metadata().at("step") == b.metadata().at("step"));
}

TEST_CASE("a non-finite loss stops training, naming epoch and batch, and keeps the last checkpoint") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "run";
  const std::string common = fmt::format("train {} --data-dir '{}' --epochs 3 --schedule constant --out '{}'",
                                         kTiny, dir.path.string(), out.string());
  REQUIRE(kindling_cli(common + " --stop-after-epochs 1", dir.path).status == 0);
  const auto before = read_bytes(out / "last.safetensors");
  const Run blowup = kindling_cli(
      common + fmt::format(" --resume '{}' --lr 1e30", (out / "last.safetensors").string()), dir.path);
  INFO(blowup.err);
  CHECK(blowup.status == 1);
  CHECK(contains(blowup.err, "epoch 2"));
  CHECK(contains(blowup.err, "batch"));
  CHECK(contains(blowup.err, "last.safetensors"));
  CHECK(std::count(blowup.err.begin(), blowup.err.end(), '\n') == 1);
  CHECK(read_bytes(out / "last.safetensors") == before);
  CHECK(temporaries_in(out).empty());
}

TEST_CASE("usage errors exit 2 with one line, runtime errors exit 1 naming the file") {
  TempDir dir;
  const Run unknown_flag = kindling_cli("train --no-such-flag", dir.path);
  CHECK(unknown_flag.status == 2);
  CHECK(std::count(unknown_flag.err.begin(), unknown_flag.err.end(), '\n') == 1);
  const Run bad_model = kindling_cli("train --model resnet21", dir.path);
  CHECK(bad_model.status == 2);
  CHECK(contains(bad_model.err, "resnet20"));  // lists the valid names
  const Run bad_loss = kindling_cli("train --loss focal:gama=2", dir.path);
  CHECK(bad_loss.status == 2);
  CHECK(contains(bad_loss.err, "gamma"));
  const Run bad_data = kindling_cli("train --data imagenet", dir.path);
  CHECK(bad_data.status == 2);
  CHECK(contains(bad_data.err, "fashion-mnist"));

  // A truncated image file (64 images declared, 100 bytes present): exit 1, one line naming the file.
  write_tiny_mnist(dir.path, 64, 32);
  fs::remove(dir / "train-images-idx3-ubyte.gz");
  write_bytes(dir / "train-images-idx3-ubyte", idx_bytes({64, 28, 28}, std::vector<uint8_t>(100, 0)));
  const Run truncated =
      kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 1", kTiny, dir.path.string()), dir.path);
  CHECK(truncated.status == 1);
  CHECK(contains(truncated.err, "train-images-idx3-ubyte"));
  CHECK(std::count(truncated.err.begin(), truncated.err.end(), '\n') == 1);

  // A checkpoint that is not a checkpoint.
  write_bytes(dir / "junk.safetensors", {1, 2, 3});
  const Run junk = kindling_cli(fmt::format("eval --checkpoint '{}' --data mnist --data-dir '{}'",
                                            (dir / "junk.safetensors").string(), dir.path.string()),
                                dir.path);
  CHECK(junk.status == 1);
  CHECK(contains(junk.err, "junk.safetensors"));
}

TEST_CASE("eval refuses a checkpoint for another class count, naming the tensor") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "run";
  REQUIRE(kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 1 --out '{}'", kTiny, dir.path.string(),
                                   out.string()),
                       dir.path)
              .status == 0);
  // The same images relabelled as EMNIST letters (26 classes, labels 1..26 on disk).
  std::vector<uint8_t> letters(32);
  for (size_t i = 0; i < letters.size(); ++i) letters[i] = uint8_t(1 + i % 26);
  fs::copy_file(dir / "t10k-images-idx3-ubyte.gz", dir / "emnist-letters-test-images-idx3-ubyte.gz");
  write_gzip(dir / "emnist-letters-test-labels-idx1-ubyte.gz", idx_bytes({32}, letters));
  const Run eval = kindling_cli(fmt::format("eval --checkpoint '{}' --data emnist-letters --data-dir '{}'",
                                            (out / "last.safetensors").string(), dir.path.string()),
                                dir.path);
  CHECK(eval.status == 1);
  CHECK(contains(eval.err, "fc.weight"));
}

TEST_CASE("study trains every (loss, seed), writes its table, and skips finished runs") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "study";
  const std::string args = fmt::format(
      "study {} --data-dir '{}' --epochs 1 --losses ce,focal:gamma=2,alpha=1 --seeds 2 --out '{}'", kTiny,
      dir.path.string(), out.string());
  const Run first = kindling_cli(args, dir.path);
  INFO(first.err);
  REQUIRE(first.status == 0);
  for (const char* file : {"study.md", "study.json", "curves.csv", "curves.gp"})
    CHECK_MESSAGE(fs::exists(out / file), file);
  std::ifstream study_in(out / "study.json");
  const auto study = nlohmann::json::parse(study_in);
  REQUIRE(study["losses"].size() == 2);
  CHECK(study["losses"][1]["loss"] == "focal:gamma=2,alpha=1");
  CHECK(study["losses"][0]["top1"].size() == 2);
  const Run again = kindling_cli(args, dir.path);
  REQUIRE(again.status == 0);
  CHECK(!contains(again.out, "== study:"));  // nothing retrained
}

TEST_CASE("study --stop-after-epochs stops inside a run and the next invocation completes it") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "study";
  const std::string args = fmt::format("study {} --data-dir '{}' --epochs 2 --losses ce --seeds 1 --out '{}'",
                                       kTiny, dir.path.string(), out.string());
  const Run sliced = kindling_cli(args + " --stop-after-epochs 1", dir.path);
  INFO(sliced.err);
  REQUIRE(sliced.status == 0);
  CHECK(contains(sliced.out, "stopped by --stop-after-epochs"));
  CHECK(!fs::exists(out / "runs" / "ce-seed0" / "done.json"));  // one epoch of two: not done
  CHECK(!fs::exists(out / "study.md"));
  const Run rest = kindling_cli(args, dir.path);
  INFO(rest.err);
  REQUIRE(rest.status == 0);
  CHECK(fs::exists(out / "runs" / "ce-seed0" / "done.json"));
  CHECK(fs::exists(out / "study.md"));
  std::ifstream metrics_in(out / "runs" / "ce-seed0" / "metrics.jsonl");
  int64_t epochs = 0;
  for (std::string line; std::getline(metrics_in, line);) epochs += !line.empty();
  CHECK(epochs == 2);
}

TEST_CASE("study --val-split fits T per run, reports one seed as n = 1, refuses another split on resume") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "study";
  const std::string args =
      fmt::format("study {} --data-dir '{}' --epochs 2 --losses ce,square --seeds 1 --out '{}'", kTiny,
                  dir.path.string(), out.string());
  const Run first = kindling_cli(args + " --val-split 0.25", dir.path);
  INFO(first.err);
  REQUIRE(first.status == 0);
  for (const char* file : {"config.json", "reliability.dat", "reliability.gp", "curves_mean.csv"})
    CHECK_MESSAGE(fs::exists(out / file), file);
  const auto rows = jsonl(out / "runs" / "square-seed0" / "metrics.jsonl");
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    CHECK(row["temperature"].get<double>() > 0);
    CHECK(row.contains("test_nll_scaled"));
    CHECK(row.contains("val_nll"));
    int64_t counted = 0;
    for (const auto& n : row["test_reliability_scaled"]["count"]) counted += n.get<int64_t>();
    CHECK(counted == 32);  // every test image in one bin
  }
  std::ifstream md_in(out / "study.md");
  const std::string md((std::istreambuf_iterator<char>(md_in)), std::istreambuf_iterator<char>());
  CHECK(contains(md, "(n = 1)"));
  CHECK(contains(md, "NLL at T"));
  CHECK(!contains(md, "±"));
  std::ifstream study_in(out / "study.json");
  const auto study = nlohmann::json::parse(study_in);
  CHECK(study["val_split"] == 0.25);
  CHECK(study["losses"][1]["last"]["temperature"]["values"].size() == 1);

  const Run other = kindling_cli(args + " --val-split 0.5", dir.path);
  CHECK(other.status == 2);
  CHECK(line_count(other.err) == 1);
  CHECK(contains(other.err, "--val-split 0.25, not 0.5"));
  CHECK(!contains(other.out, "== study:"));

  // A split that leaves one side empty is a usage error naming the flag.
  const Run empty = kindling_cli(
      fmt::format("train {} --data-dir '{}' --epochs 1 --val-split 0.001", kTiny, dir.path.string()),
      dir.path);
  CHECK(empty.status == 2);
  CHECK(contains(empty.err, "--val-split: validation split"));
}

TEST_CASE("losses, info and bench print what they promise") {
  TempDir dir;
  const Run losses = kindling_cli("losses", dir.path);
  REQUIRE(losses.status == 0);
  for (const char* name : {"ce", "label_smoothing", "lace", "expectation", "ce_expectation_mix", "min_ent",
                           "mix_ent", "squentropy", "square", "ngl", "focal", "poly1"})
    CHECK_MESSAGE(contains(losses.out, name), name);
  const Run info = kindling_cli("info", dir.path);
  REQUIRE(info.status == 0);
  CHECK(contains(info.out, "OpenBLAS"));
  CHECK(contains(info.out, "cuda"));
  const Run bench =
      kindling_cli("bench --model resnet20 --batch-size 4 --warmup 0 --repeats 2 --json", dir.path);
  INFO(bench.err);
  REQUIRE(bench.status == 0);
  const auto rows = nlohmann::json::parse(bench.out.substr(0, bench.out.find('\n')));
  for (const char* key : {"name", "device", "images_per_s", "ms_median", "ms_min", "ms_max", "peak_bytes"})
    CHECK_MESSAGE(rows.contains(key), key);
  CHECK(rows["images_per_s"].get<double>() > 0);
}

// `kindling bench --peak` and the training step's share of the peak, from their JSON rows. The
// figures are not timed here (short runs on a shared machine): the keys, the names, the arithmetic.
TEST_CASE("bench --peak reports each peak kernel and a step its GFLOP/s and share of the peak") {
  TempDir dir;
  auto rows_of = [](const std::string& out) {
    std::vector<nlohmann::json> rows;
    size_t start = 0;
    for (size_t end; (end = out.find('\n', start)) != std::string::npos; start = end + 1)
      rows.push_back(nlohmann::json::parse(out.substr(start, end - start)));
    return rows;
  };
  const Run peak = kindling_cli("bench --peak --repeats 1 --peak-seconds 0.01 --json", dir.path);
  INFO(peak.err);
  REQUIRE(peak.status == 0);
  const auto peaks = rows_of(peak.out);
  std::vector<std::string> expected;  // KINDLING_NUM_THREADS=2: one thread, then both
  for (const cpu::PeakKernel& kernel : cpu::peak_kernels())
    for (const char* threads : {"1thread", "2threads"})
      expected.push_back("peak/" + kernel.name + "/" + threads);
  REQUIRE(peaks.size() == expected.size());
  for (size_t i = 0; i < peaks.size(); ++i) {
    CHECK(peaks[i]["name"] == expected[i]);
    for (const char* key : {"gflop_per_s", "threads", "isa", "chains", "repeats", "ms_min"})
      CHECK_MESSAGE(peaks[i].contains(key), key);
    CHECK(peaks[i]["gflop_per_s"].get<double>() > 0);
    CHECK(peaks[i]["repeats"] == 1);
  }

  const std::string step = "bench --model resnet20 --batch-size 2 --warmup 0 --repeats 1 --json";
  const Run given = kindling_cli(step + " --peak-gflops 50", dir.path, "KINDLING_WINOGRAD=");
  INFO(given.err);
  REQUIRE(given.status == 0);
  const auto given_rows = rows_of(given.out);
  REQUIRE(given_rows.size() == 1);  // no peak measured
  const nlohmann::json& row = given_rows[0];
  CHECK(row["gflop_per_image"].get<double>() == doctest::Approx(0.242421504).epsilon(1e-9));
  const double gflop_per_s = row["gflop_per_s"].get<double>();
  CHECK(gflop_per_s == doctest::Approx(0.242421504 * row["images_per_s"].get<double>()).epsilon(1e-9));
  CHECK(row["gflops"].get<double>() == gflop_per_s);
  CHECK(row["peak_gflop_per_s"].get<double>() == 50);
  CHECK(row["peak_fraction"].get<double>() == doctest::Approx(gflop_per_s / 50).epsilon(1e-12));
  CHECK(row["winograd"] == true);  // its GFLOP/s are effective ones
  const Run direct = kindling_cli(step + " --peak-gflops 50", dir.path, "KINDLING_WINOGRAD=0");
  REQUIRE(direct.status == 0);
  CHECK(rows_of(direct.out)[0]["winograd"] == false);

  const Run measured = kindling_cli(step + " --peak-seconds 0.01", dir.path);
  INFO(measured.err);
  REQUIRE(measured.status == 0);
  const auto measured_rows = rows_of(measured.out);
  REQUIRE(measured_rows.size() == 2);
  CHECK(measured_rows[1]["name"] == "peak/fp32_fma/2threads");  // after the step: old readers take line 1
  const double peak_gflops = measured_rows[1]["gflop_per_s"].get<double>();
  const nlohmann::json& measured_step = measured_rows[0];
  CHECK(measured_step["peak_gflop_per_s"].get<double>() == doctest::Approx(peak_gflops).epsilon(1e-6));
  CHECK(measured_step["peak_fraction"].get<double>() ==
        doctest::Approx(measured_step["gflop_per_s"].get<double>() / peak_gflops).epsilon(1e-6));

  const Run table =
      kindling_cli("bench --model resnet20 --batch-size 2 --warmup 0 --repeats 1 --peak-gflops 50", dir.path,
                   "KINDLING_WINOGRAD=");
  REQUIRE(table.status == 0);
  CHECK(contains(table.out, "% peak"));
  CHECK(contains(table.out, "FP32 peak for % peak: 50.0 GFLOP/s (--peak-gflops)"));
  CHECK(contains(table.out, "GFLOP/s and % peak are effective"));
  CHECK(kindling_cli(step + " --peak-gflops -1", dir.path).status == 2);
}

// --compare-pytorch with a python that has no torch says so in one line and goes on.
TEST_CASE("bench --compare-pytorch skips a python without torch") {
  TempDir dir;
  const fs::path python = dir / "python-without-torch";
  {
    std::ofstream script(python);
    script << "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n";  // -S: no site-packages, so no torch
  }
  fs::permissions(python, fs::perms::owner_all);
  const Run run =
      kindling_cli(fmt::format("bench --model resnet20 --batch-size 2 --warmup 0 --repeats 1 "
                               "--peak-gflops 50 --compare-pytorch --python '{}' --torch2-python '{}'",
                               python.string(), python.string()),
                   dir.path);
  INFO(run.err);
  REQUIRE(run.status == 0);
  CHECK(contains(run.out, "train_step/resnet20/b2"));
  CHECK(contains(run.err, python.string() + ": no torch (No module named 'torch'); PyTorch skipped\n"));
  const Run missing = kindling_cli(
      "bench --model resnet20 --batch-size 2 --warmup 0 --repeats 1 --peak-gflops 50 "
      "--compare-pytorch --torch2-python /nonexistent/python",
      dir.path);
  CHECK(missing.status == 2);
  CHECK(contains(missing.err, "--torch2-python /nonexistent/python: no such file"));
}

TEST_CASE("KINDLING_KERNELS=reference trains on the reference kernels to the fast path's numbers") {
  TempDir dir;
  write_tiny_mnist(dir.path, 8, 8);  // the reference convolution is slow: one batch
  const std::string common = fmt::format(
      "train --data mnist --data-dir '{}' --model resnet20 --batch-size 8 "
      "--epochs 1 --lr 0.05 --deterministic --quiet --threads 2",
      dir.path.string());
  REQUIRE(kindling_cli(fmt::format("{} --out '{}'", common, (dir / "fast").string()), dir.path).status == 0);
  setenv("KINDLING_KERNELS", "reference", 1);
  const Run reference =
      kindling_cli(fmt::format("{} --out '{}'", common, (dir / "reference").string()), dir.path);
  setenv("KINDLING_KERNELS", "fastest", 1);
  const Run unknown =
      kindling_cli(fmt::format("{} --out '{}'", common, (dir / "unknown").string()), dir.path);
  unsetenv("KINDLING_KERNELS");
  INFO(reference.err);
  REQUIRE(reference.status == 0);
  const auto fast_rows = jsonl(dir / "fast" / "metrics.jsonl"),
             reference_rows = jsonl(dir / "reference" / "metrics.jsonl");
  REQUIRE(fast_rows.size() == 1);
  REQUIRE(reference_rows.size() == 1);
  for (const char* key : {"train_loss", "test_loss"})
    CHECK_MESSAGE(reference_rows[0][key].get<double>() ==
                      doctest::Approx(fast_rows[0][key].get<double>()).epsilon(1e-4),
                  key);
  CHECK(reference_rows[0]["test_accuracy"] == fast_rows[0]["test_accuracy"]);
  CHECK(unknown.status != 0);
  CHECK(contains(unknown.err, "KINDLING_KERNELS=fastest: expected fast or reference"));
}
