// `kindling train`: one training run; prints the final test accuracy. SIGINT and SIGTERM stop it
// cleanly (apps/signals.h): one line on stderr, exit 130 or 143.
#include "apps/commands.h"
#include "apps/signals.h"
#include "apps/trainer.h"
#include "dist/communicator.h"

#include <fmt/core.h>

namespace kindling::app {

Command add_train(CLI::App& app) {
  auto config = std::make_shared<TrainConfig>();
  add_train_flags(app, *config);
  return [config] {
    StopOnSignals stop_on_signals;
    try {
      const RunResult result = run_training(*config);
      if (!result.epochs.empty() && dist::world().rank() == 0)
        fmt::print("final test accuracy: {:.2f}% ({} epochs, {:.1f} s)\n",
                   100 * result.epochs.back().test_accuracy, result.epochs.back().epoch,
                   result.total_seconds);
    } catch (const Interrupted& e) {
      std::fflush(stdout);
      fmt::print(stderr, "kindling: {}\n", e.what());
      return exit_code(e);
    }
    return 0;
  };
}

}  // namespace kindling::app
