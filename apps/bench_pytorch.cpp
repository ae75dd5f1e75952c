// `kindling bench --compare-pytorch`: the training step of bench/pytorch_reference.py, PyTorch's twin
// of kindling's, run by Debian's python (PyTorch 1.13) and, when bench/setup_pytorch2.sh has made
// it, by the python of bench/.venv-torch2 (a current PyTorch 2.x, whose newer oneDNN is what users
// run), each in fp32 and in bf16 autocast. Same model, batch, warm-up, steps and thread count; the
// environment, OPENBLAS_CORETYPE included, is inherited, so both sides see the same OpenBLAS setting.
#include "apps/bench.h"
#include "core/error.h"
#include "core/parallel.h"

#include <fmt/core.h>

#include <sys/wait.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

namespace kindling::app {
namespace {

constexpr int kNoTorch = 3;     // pytorch_reference.py's exit status when `import torch` fails
constexpr int kNotFound = 127;  // the shell's, when the python does not exist

const std::filesystem::path kBenchDir = std::filesystem::path(KINDLING_SOURCE_DIR) / "bench";

struct ReferenceRun {
  int status = -1;
  nlohmann::json row;  // the last line of its output, when it is a JSON object
};

ReferenceRun run_reference(const std::string& python, const BenchOptions& o, Device device, bool bf16) {
  const std::string command = fmt::format(
      "'{}' '{}' --model {} --batch-size {} --device {} --threads {} --steps {} --warmup {} "
      "--channels {} --image-size {} --classes {}{}",
      python, (kBenchDir / "pytorch_reference.py").string(), o.model, o.batch_size,
      device.is_cpu() ? "cpu" : "cuda", num_threads(), o.repeats, o.warmup, o.channels, o.image_size,
      o.classes, bf16 ? " --bf16" : "");
  FILE* pipe = popen(command.c_str(), "r");
  KINDLING_CHECK(pipe != nullptr, Error, "bench: could not run {}", command);
  std::string output;
  char buffer[4096];
  while (size_t got = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, got);
  const int status = pclose(pipe);
  ReferenceRun run;
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const size_t line = output.rfind("\n{");  // the JSON object is the last line
  const std::string last = line == std::string::npos ? output : output.substr(line + 1);
  if (!last.empty() && last[0] == '{') run.row = nlohmann::json::parse(last, nullptr, false);
  KINDLING_CHECK(
      run.status == kNoTorch || run.status == kNotFound || (run.status == 0 && run.row.is_object()), Error,
      "bench: the PyTorch reference failed (exit status {}): {}", run.status, command);
  return run;
}

// "PyTorch 1.13.1 (/usr/bin/python3): oneDNN 2.6.3, BLAS generic (OpenBLAS core Haswell), CPU
// capability AVX2, 2 threads"
std::string describe_torch(const nlohmann::json& row) {
  auto text = [&](const char* key) {
    return row.contains(key) && row[key].is_string() ? row[key].get<std::string>() : std::string("?");
  };
  const bool mkldnn = row.value("mkldnn", false);
  return fmt::format("PyTorch {} ({}): oneDNN {}, BLAS {}{}, CPU capability {}, {} threads", text("torch"),
                     text("python"), mkldnn ? text("onednn") : "not available", text("blas"),
                     row.contains("openblas_core") && row["openblas_core"].is_string()
                         ? fmt::format(" (OpenBLAS core {})", text("openblas_core"))
                         : "",
                     text("cpu_capability"), row.value("threads", 0));
}

}  // namespace

PytorchComparison compare_pytorch(const BenchOptions& o, Device device, const BenchResult& step) {
  PytorchComparison out;
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  out.text += fmt::format("\nPyTorch on {}, {} threads both sides, OPENBLAS_CORETYPE {} for both\n",
                          device.str(), num_threads(), coretype ? fmt::format("={}", coretype) : "unset");
  std::vector<std::string> pythons{o.python};
  const std::string torch2 =
      o.torch2_python.empty() ? (kBenchDir / ".venv-torch2" / "bin" / "python").string() : o.torch2_python;
  if (std::filesystem::exists(torch2))
    pythons.push_back(torch2);
  else if (!o.torch2_python.empty())
    throw UsageError(fmt::format("--torch2-python {}: no such file", o.torch2_python));
  else
    out.text += fmt::format("PyTorch 2.x: no {} (bash bench/setup_pytorch2.sh makes it)\n", torch2);

  const std::string ours = step.precision.empty() ? "fp32" : step.precision;  // kindling's GEMMs
  std::map<std::string, nlohmann::json> fastest;  // precision -> the faster PyTorch's row
  for (const std::string& python : pythons) {
    for (bool bf16 : {false, true}) {
      ReferenceRun run = run_reference(python, o, device, bf16);
      if (run.status != 0) {
        fmt::print(
            stderr, "bench: {}: {}; PyTorch skipped\n", python,
            run.status == kNotFound ? "not found" : run.row.value("error", std::string("has no torch")));
        break;
      }
      nlohmann::json& row = run.row;
      if (!bf16) out.text += describe_torch(row) + "\n";
      const double images_per_s = row.at("images_per_s").get<double>();
      row["kindling_over_pytorch"] = step.images_per_s / images_per_s;
      const std::string precision = row.value("precision", bf16 ? "bf16" : "fp32");
      out.text +=
          fmt::format("  torch {} {:<4}: {:8.0f} img/s (median {:.2f} ms); kindling {} / this = {:.2f}x\n",
                      row.at("torch").get<std::string>(), precision, images_per_s,
                      row.at("ms_median").get<double>(), ours, step.images_per_s / images_per_s);
      auto best = fastest.find(precision);
      if (best == fastest.end() || best->second.at("images_per_s").get<double>() < images_per_s)
        fastest[precision] = row;
      out.rows.push_back(row);
    }
  }
  for (const char* precision : {"fp32", "bf16"}) {
    if (!fastest.contains(precision)) continue;
    const nlohmann::json& row = fastest.at(precision);
    const double ratio = step.images_per_s / row.at("images_per_s").get<double>();
    out.text += fmt::format("kindling {} / the faster PyTorch {} (torch {}): {:.2f}x\n", ours, precision,
                            row.at("torch").get<std::string>(), ratio);
    out.rows.push_back(
        {{"name", fmt::format("compare/train_step/{}/b{}/{}", o.model, o.batch_size, precision)},
         {"device", device.str()},
         {"kindling_images_per_s", step.images_per_s},
         {"kindling_precision", ours},
         {"pytorch_images_per_s", row.at("images_per_s")},
         {"torch", row.at("torch")},
         {"python", row.value("python", std::string())},
         {"kindling_over_fastest", ratio}});
  }
  return out;
}

}  // namespace kindling::app
