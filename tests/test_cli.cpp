// The kindling binary end to end, on a tiny MNIST-format dataset the test writes: every subcommand,
// the files train writes, exact resume, bad flags, bad files, and the stop on a non-finite loss.
#include "core/safetensors.h"
#include "tests/cli_helpers.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <sys/wait.h>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("train writes config, metrics, checkpoints; eval reads them back") {
  TempDir dir;
  write_tiny_mnist(dir.path, 256, 128);
  const fs::path out = dir / "run";
  const Run train = kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 2 --out '{}'", kTiny,
                                             dir.path.string(), out.string()), dir.path);
  INFO(train.err);
  REQUIRE(train.status == 0);
  CHECK(contains(train.out, "final test accuracy:"));
  CHECK(fs::exists(out / "config.json"));
  CHECK(fs::exists(out / "last.safetensors"));
  CHECK(fs::exists(out / "best.safetensors"));
  CHECK(temporaries_in(out).empty());
  const auto rows = jsonl(out / "metrics.jsonl");
  REQUIRE(rows.size() == 2);
  for (const char* key : {"epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "test_nll",
                          "test_ece", "images_per_s", "seconds"})
    CHECK_MESSAGE(rows[1].contains(key), key);
  CHECK(rows[1]["epoch"] == 2);
  // The bands are easy: two epochs must beat chance (10 %) by far.
  CHECK(rows[1]["test_accuracy"].get<double>() > 0.5);
  std::ifstream config_in(out / "config.json");
  const nlohmann::json config = nlohmann::json::parse(config_in);
  CHECK(config["model"] == "resnet20");
  CHECK(config["crop_padding"] == 4);   // --crop-padding's default, the CIFAR recipe's

  const Run eval = kindling_cli(fmt::format("eval --checkpoint '{}' --data mnist --data-dir '{}' --json",
                                            (out / "last.safetensors").string(), dir.path.string()), dir.path);
  INFO(eval.err);
  REQUIRE(eval.status == 0);
  const auto result = nlohmann::json::parse(eval.out);
  CHECK(result["samples"] == 128);
  CHECK(result["accuracy"].get<double>() == doctest::Approx(rows[1]["test_accuracy"].get<double>()).epsilon(1e-6));
  for (const char* key : {"accuracy", "nll", "ece", "samples"}) CHECK(result.contains(key));
}

TEST_CASE("two epochs equal one epoch, a resume, and one more (deterministic CPU)") {
  TempDir dir;
  write_tiny_mnist(dir.path, 128, 64);
  const std::string common = fmt::format("train {} --data-dir '{}' --epochs 2 --deterministic --schedule cosine", kTiny,
                                         dir.path.string());
  REQUIRE(kindling_cli(fmt::format("{} --out '{}'", common, (dir / "straight").string()), dir.path).status == 0);
  REQUIRE(kindling_cli(fmt::format("{} --out '{}' --stop-after-epochs 1", common, (dir / "sliced").string()), dir.path)
              .status == 0);
  CHECK(jsonl(dir / "sliced" / "metrics.jsonl").size() == 1);
  const Run resumed = kindling_cli(fmt::format("{} --out '{}' --resume '{}'", common, (dir / "sliced").string(),
                                               (dir / "sliced" / "last.safetensors").string()), dir.path);
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
  const std::string common = fmt::format("train {} --data-dir '{}' --epochs 3 --schedule constant --out '{}'", kTiny,
                                         dir.path.string(), out.string());
  REQUIRE(kindling_cli(common + " --stop-after-epochs 1", dir.path).status == 0);
  const auto before = read_bytes(out / "last.safetensors");
  const Run blowup = kindling_cli(common + fmt::format(" --resume '{}' --lr 1e30", (out / "last.safetensors").string()),
                                  dir.path);
  INFO(blowup.err);
  CHECK(blowup.status == 1);
  CHECK(contains(blowup.err, "epoch 2"));
  CHECK(contains(blowup.err, "batch"));
  CHECK(contains(blowup.err, "last.safetensors"));
  CHECK(std::count(blowup.err.begin(), blowup.err.end(), '\n') == 1);
  CHECK(read_bytes(out / "last.safetensors") == before);
  CHECK(temporaries_in(out).empty());
}

TEST_CASE("usage errors exit 2 with one line; runtime errors exit 1 naming the file") {
  TempDir dir;
  const Run unknown_flag = kindling_cli("train --no-such-flag", dir.path);
  CHECK(unknown_flag.status == 2);
  CHECK(std::count(unknown_flag.err.begin(), unknown_flag.err.end(), '\n') == 1);
  const Run bad_model = kindling_cli("train --model resnet21", dir.path);
  CHECK(bad_model.status == 2);
  CHECK(contains(bad_model.err, "resnet20"));   // lists the valid names
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
  const Run truncated = kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 1", kTiny, dir.path.string()), dir.path);
  CHECK(truncated.status == 1);
  CHECK(contains(truncated.err, "train-images-idx3-ubyte"));
  CHECK(std::count(truncated.err.begin(), truncated.err.end(), '\n') == 1);

  // A checkpoint that is not a checkpoint.
  write_bytes(dir / "junk.safetensors", {1, 2, 3});
  const Run junk = kindling_cli(fmt::format("eval --checkpoint '{}' --data mnist --data-dir '{}'",
                                            (dir / "junk.safetensors").string(), dir.path.string()), dir.path);
  CHECK(junk.status == 1);
  CHECK(contains(junk.err, "junk.safetensors"));
}

TEST_CASE("eval refuses a checkpoint for another class count, naming the tensor") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "run";
  REQUIRE(kindling_cli(fmt::format("train {} --data-dir '{}' --epochs 1 --out '{}'", kTiny, dir.path.string(),
                                   out.string()), dir.path).status == 0);
  // The same images relabelled as EMNIST letters (26 classes, labels 1..26 on disk).
  std::vector<uint8_t> letters(32);
  for (size_t i = 0; i < letters.size(); ++i) letters[i] = uint8_t(1 + i % 26);
  fs::copy_file(dir / "t10k-images-idx3-ubyte.gz", dir / "emnist-letters-test-images-idx3-ubyte.gz");
  write_gzip(dir / "emnist-letters-test-labels-idx1-ubyte.gz", idx_bytes({32}, letters));
  const Run eval = kindling_cli(fmt::format("eval --checkpoint '{}' --data emnist-letters --data-dir '{}'",
                                            (out / "last.safetensors").string(), dir.path.string()), dir.path);
  CHECK(eval.status == 1);
  CHECK(contains(eval.err, "fc.weight"));
}

TEST_CASE("study trains every (loss, seed), writes its table, and skips finished runs") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const fs::path out = dir / "study";
  const std::string args = fmt::format("study {} --data-dir '{}' --epochs 1 --losses ce,focal:gamma=2,alpha=1 --seeds 2 --out '{}'",
                                       kTiny, dir.path.string(), out.string());
  const Run first = kindling_cli(args, dir.path);
  INFO(first.err);
  REQUIRE(first.status == 0);
  for (const char* file : {"study.md", "study.json", "curves.csv", "curves.gp"}) CHECK_MESSAGE(fs::exists(out / file), file);
  std::ifstream study_in(out / "study.json");
  const auto study = nlohmann::json::parse(study_in);
  REQUIRE(study["losses"].size() == 2);
  CHECK(study["losses"][1]["loss"] == "focal:gamma=2,alpha=1");
  CHECK(study["losses"][0]["top1"].size() == 2);
  const Run again = kindling_cli(args, dir.path);
  REQUIRE(again.status == 0);
  CHECK(!contains(again.out, "== study:"));   // nothing retrained
}

TEST_CASE("losses, info and bench print what they promise") {
  TempDir dir;
  const Run losses = kindling_cli("losses", dir.path);
  REQUIRE(losses.status == 0);
  for (const char* name : {"ce", "label_smoothing", "lace", "expectation", "ce_expectation_mix", "min_ent", "mix_ent",
                           "squentropy", "square", "ngl", "focal", "poly1"})
    CHECK_MESSAGE(contains(losses.out, name), name);
  const Run info = kindling_cli("info", dir.path);
  REQUIRE(info.status == 0);
  CHECK(contains(info.out, "OpenBLAS"));
  CHECK(contains(info.out, "cuda"));
  const Run bench = kindling_cli("bench --model resnet20 --batch-size 4 --warmup 0 --repeats 2 --json", dir.path);
  INFO(bench.err);
  REQUIRE(bench.status == 0);
  const auto rows = nlohmann::json::parse(bench.out.substr(0, bench.out.find('\n')));
  for (const char* key : {"name", "device", "images_per_s", "ms_median", "ms_min", "ms_max", "peak_bytes"})
    CHECK_MESSAGE(rows.contains(key), key);
  CHECK(rows["images_per_s"].get<double>() > 0);
}

TEST_CASE("KINDLING_KERNELS=reference trains on the reference kernels to the fast path's numbers") {
  TempDir dir;
  write_tiny_mnist(dir.path, 8, 8);   // the reference convolution is slow: one batch
  const std::string common = fmt::format("train --data mnist --data-dir '{}' --model resnet20 --batch-size 8 "
                                         "--epochs 1 --lr 0.05 --deterministic --quiet --threads 2",
                                         dir.path.string());
  REQUIRE(kindling_cli(fmt::format("{} --out '{}'", common, (dir / "fast").string()), dir.path).status == 0);
  setenv("KINDLING_KERNELS", "reference", 1);
  const Run reference = kindling_cli(fmt::format("{} --out '{}'", common, (dir / "reference").string()), dir.path);
  setenv("KINDLING_KERNELS", "fastest", 1);
  const Run unknown = kindling_cli(fmt::format("{} --out '{}'", common, (dir / "unknown").string()), dir.path);
  unsetenv("KINDLING_KERNELS");
  INFO(reference.err);
  REQUIRE(reference.status == 0);
  const auto fast_rows = jsonl(dir / "fast" / "metrics.jsonl"), reference_rows = jsonl(dir / "reference" / "metrics.jsonl");
  REQUIRE(fast_rows.size() == 1);
  REQUIRE(reference_rows.size() == 1);
  for (const char* key : {"train_loss", "test_loss"})
    CHECK_MESSAGE(reference_rows[0][key].get<double>() ==
                      doctest::Approx(fast_rows[0][key].get<double>()).epsilon(1e-4), key);
  CHECK(reference_rows[0]["test_accuracy"] == fast_rows[0]["test_accuracy"]);
  CHECK(unknown.status != 0);
  CHECK(contains(unknown.err, "KINDLING_KERNELS=fastest: expected fast or reference"));
}
