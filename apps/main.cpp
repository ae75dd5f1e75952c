// kindling: train, eval, study, bench, losses, info, export.
#include "apps/commands.h"
#include "core/error.h"
#include "dist/communicator.h"

#include <fmt/core.h>

#include <cstdio>
#include <map>

int main(int argc, char** argv) {
  using namespace kindling;
  CLI::App app{"kindling: a deep learning framework written from scratch in C++", "kindling"};
  app.require_subcommand(1);
  // As with argparse, a flag given twice takes its last value (scripts append overrides).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", std::string(KINDLING_VERSION));
  std::map<CLI::App*, app::Command> commands;
  auto add = [&](const char* name, const char* help, app::Command (*make)(CLI::App&)) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands[sub] = make(*sub);
  };
  add("train", "train a model on a dataset", app::add_train);
  add("eval", "evaluate a checkpoint on a test set", app::add_eval);
  add("study", "compare losses: train every (loss, seed) and tabulate", app::add_study);
  add("bench", "time ops and training steps, CPU and CUDA, against PyTorch", app::add_bench);
  add("losses", "list every loss with its formula and hyperparameters", app::add_losses);
  add("info", "version, build options, BLAS, CUDA and GPUs", app::add_info);
  add("export", "write a checkpoint's network as an ONNX model", app::add_export);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, listing what is valid where CLI11 knows it.
    fmt::print(stderr, "kindling: {} (see kindling --help)\n", e.what());
    return 2;
  }
  try {
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return dist::finish(run());
  } catch (const UsageError& e) {
    fmt::print(stderr, "kindling: {}\n", e.what());
    return dist::finish(2);  // under mpirun: aborts the other ranks instead of leaving them waiting
  } catch (const std::exception& e) {
    fmt::print(stderr, "kindling: error: {}\n", e.what());
    return dist::finish(1);
  }
  return 0;
}
