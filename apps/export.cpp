// `kindling export --onnx model.onnx --checkpoint F`: the checkpoint's network, in eval mode, as an
// ONNX model (apps/onnx_export.h), written atomically (temporary file, then rename).
#include "apps/commands.h"
#include "apps/onnx_export.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "nn/models.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace kindling::app {

Command add_export(CLI::App& app) {
  struct Flags {
    std::string onnx, checkpoint;
  };
  auto flags = std::make_shared<Flags>();
  app.add_option("--onnx", flags->onnx, "write the network as an ONNX model (opset 13) to this file")
      ->required();
  app.add_option("--checkpoint", flags->checkpoint, "a checkpoint written by kindling train")
      ->required()
      ->check(CLI::ExistingFile);
  return [flags] {
    const CheckpointInfo info = read_checkpoint_info(flags->checkpoint);
    KINDLING_CHECK(
        !info.model.empty() && !info.model_config.empty(), FileError,
        "checkpoint {}: no model or model_config in its metadata (was it written by kindling train?)",
        flags->checkpoint);
    const auto config = nlohmann::json::parse(info.model_config, nullptr, /*allow_exceptions=*/false);
    KINDLING_CHECK(config.is_object() && config.contains("in_channels") && config.contains("num_classes") &&
                       config.contains("input_size"),
                   FileError, "checkpoint {}: model_config '{}' lacks in_channels, num_classes or input_size",
                   flags->checkpoint, info.model_config);
    const int64_t channels = config["in_channels"], classes = config["num_classes"],
                  side = config["input_size"];
    std::shared_ptr<Module> model = make_model(info.model, channels, classes, side);
    load_checkpoint(flags->checkpoint, model->state_dict());
    model->eval();
    const std::string bytes =
        export_onnx(*model, {.channels = channels, .height = side, .width = side, .graph_name = info.model});

    const std::string tmp = flags->onnx + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.close();
      if (!out) {
        std::remove(tmp.c_str());
        throw FileError(fmt::format("{}: cannot write the ONNX model", flags->onnx));
      }
    }
    std::error_code error;
    std::filesystem::rename(tmp, flags->onnx, error);
    if (error) {
      std::remove(tmp.c_str());
      throw FileError(fmt::format("{}: cannot write the ONNX model ({})", flags->onnx, error.message()));
    }
    fmt::print("{}: {} ({} classes, input [N,{},{},{}]), ONNX opset 13, {} bytes\n", flags->onnx, info.model,
               classes, channels, side, side, bytes.size());
    return 0;
  };
}

}  // namespace kindling::app
