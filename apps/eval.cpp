// `kindling eval --checkpoint F --data ...`: top-1 accuracy, NLL and ECE of a checkpoint.
#include "apps/commands.h"
#include "apps/trainer.h"
#include "core/backend.h"
#include "core/checkpoint.h"
#include "data/datasets.h"
#include "dist/communicator.h"
#include "nn/models.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace kindling::app {

Command add_eval(CLI::App& app) {
  struct Flags {
    DataFlags data;
    std::string checkpoint;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  add_data_flags(app, flags->data);
  app.add_option("--checkpoint", flags->checkpoint, "a checkpoint written by kindling train")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_flag("--json", flags->json, "print one JSON object: accuracy, nll, ece, samples");
  return [flags] {
    apply_threads(flags->data.threads);
    apply_precision(flags->data.precision, flags->data.device);
    const Device device = Device::parse(flags->data.device);
    backend(device);
    data::ImageDataset test_set = data::load_dataset(flags->data.data, false, flags->data.data_dir);
    if (flags->data.limit_test > 0) test_set = data::limit(test_set, flags->data.limit_test);
    const CheckpointInfo info = read_checkpoint_info(flags->checkpoint);
    KINDLING_CHECK(!info.model.empty(), FileError,
                   "checkpoint {}: no model name in its metadata (was it written by kindling train?)",
                   flags->checkpoint);
    std::shared_ptr<Module> model =
        make_model(info.model, test_set.channels, test_set.num_classes, test_set.height);
    // A checkpoint for another model or class count fails here, naming the first tensor that differs.
    load_checkpoint(flags->checkpoint, model->state_dict());
    model->to(device);
    const EvalResult r =
        evaluate(*model, test_set, flags->data.batch_size, device, nullptr, flags->data.workers);
    if (dist::world().rank() != 0) return 0;  // under mpirun: every rank evaluated a share; rank 0 reports
    if (flags->json) {
      fmt::print("{}\n", nlohmann::json{{"accuracy", r.metrics.top1},
                                        {"nll", r.metrics.nll},
                                        {"ece", r.metrics.ece15},
                                        {"samples", r.metrics.count}}
                             .dump());
    } else {
      fmt::print("{} on {} test ({} samples): accuracy {:.2f}%  top-5 {:.2f}%  nll {:.4f}  ece {:.4f}\n",
                 info.model, flags->data.data, r.metrics.count, 100 * r.metrics.top1, 100 * r.metrics.top5,
                 r.metrics.nll, r.metrics.ece15);
    }
    return 0;
  };
}

}  // namespace kindling::app
