// `kindling train`: one training run; prints the final test accuracy.
#include "apps/commands.h"
#include "apps/trainer.h"
#include "dist/communicator.h"

#include <fmt/core.h>

namespace kindling::app {

Command add_train(CLI::App& app) {
  auto config = std::make_shared<TrainConfig>();
  add_train_flags(app, *config);
  return [config] {
    const RunResult result = run_training(*config);
    if (!result.epochs.empty() && dist::world().rank() == 0)
      fmt::print("final test accuracy: {:.2f}% ({} epochs, {:.1f} s)\n",
                 100 * result.epochs.back().test_accuracy, result.epochs.back().epoch, result.total_seconds);
    return 0;
  };
}

}  // namespace kindling::app
