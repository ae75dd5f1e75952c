// `--precision bf16` end to end: train on the bf16 GEMMs to about fp32's numbers, record it in
// config.json, and refuse it with a clear message on a CPU without AVX512-BF16 or with CUDA.
#include "core/precision.h"
#include "tests/cli_helpers.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("train --precision bf16 trains to fp32's numbers, or says why it cannot") {
  TempDir dir;
  write_tiny_mnist(dir.path, 64, 32);
  const std::string common = fmt::format(
      "train --data mnist --data-dir '{}' --model resnet20 --batch-size 16 --epochs 1 --lr 0.05 "
      "--deterministic --threads 2",
      dir.path.string());
  const Run cuda = kindling_cli(
      fmt::format("{} --device cuda --precision bf16 --out '{}'", common, (dir / "cuda").string()), dir.path);
  CHECK(cuda.status == 2);
  CHECK(contains(cuda.err, "--precision bf16 is a CPU setting"));
  const Run bf16 =
      kindling_cli(fmt::format("{} --precision bf16 --out '{}'", common, (dir / "bf16").string()), dir.path);
  if (!cpu_has_avx512_bf16()) {
    CHECK(bf16.status == 1);
    CHECK(contains(bf16.err, "precision bf16 needs a CPU with AVX512-BF16"));
    CHECK(!fs::exists(dir / "bf16"));
    return;
  }
  INFO(bf16.err);
  REQUIRE(bf16.status == 0);
  CHECK(contains(bf16.out, "bf16 GEMMs"));
  std::ifstream config(dir / "bf16" / "config.json");
  CHECK(nlohmann::json::parse(config)["precision"] == "bf16");
  REQUIRE(kindling_cli(fmt::format("{} --out '{}'", common, (dir / "fp32").string()), dir.path).status == 0);
  const auto bf16_rows = jsonl(dir / "bf16" / "metrics.jsonl"),
             fp32_rows = jsonl(dir / "fp32" / "metrics.jsonl");
  REQUIRE(bf16_rows.size() == 1);
  REQUIRE(fp32_rows.size() == 1);
  // Four steps of bf16 rounding (about 2⁻⁹ per operand) move the losses by well under 5 %; a GEMM
  // that were wrong would not train at all, and one that were fp32 would give fp32's exact numbers.
  for (const char* key : {"train_loss", "test_loss"}) {
    const double ours = bf16_rows[0][key].get<double>(), theirs = fp32_rows[0][key].get<double>();
    INFO(key, " bf16 ", ours, " fp32 ", theirs);
    CHECK(std::fabs(ours - theirs) < 0.05 * theirs);
    CHECK(ours != theirs);
  }
}

TEST_CASE("bench --precision bf16 times the bf16 step and says so in --json") {
  TempDir dir;
  auto step_row = [](const std::string& out) {
    size_t start = 0;
    for (size_t end; (end = out.find('\n', start)) != std::string::npos; start = end + 1) {
      const auto row = nlohmann::json::parse(out.substr(start, end - start));
      if (row.value("name", std::string()).starts_with("train_step/")) return row;
    }
    FAIL("no train_step row in: " << out);
    return nlohmann::json();
  };
  const std::string step =
      "bench --model resnet20 --batch-size 2 --warmup 0 --repeats 1 --json --peak-gflops 50";
  const Run fp32 = kindling_cli(step, dir.path, "KINDLING_WINOGRAD=");
  INFO(fp32.err);
  REQUIRE(fp32.status == 0);
  CHECK(step_row(fp32.out)["precision"] == "fp32");
  CHECK(step_row(fp32.out)["winograd"] == true);
  const Run bf16 = kindling_cli(step + " --precision bf16", dir.path, "KINDLING_WINOGRAD=");
  if (!cpu_has_avx512_bf16()) {
    CHECK(bf16.status == 1);
    CHECK(contains(bf16.err, "precision bf16 needs a CPU with AVX512-BF16"));
    return;
  }
  INFO(bf16.err);
  REQUIRE(bf16.status == 0);
  CHECK(step_row(bf16.out)["precision"] == "bf16");
  CHECK(step_row(bf16.out)["winograd"] == true);  // F(2x2,3x3) on bf16 tile GEMMs
  const Run direct = kindling_cli(step + " --precision bf16", dir.path, "KINDLING_WINOGRAD=0");
  INFO(direct.err);
  REQUIRE(direct.status == 0);
  CHECK(step_row(direct.out)["winograd"] == false);
}
