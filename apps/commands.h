// The kindling subcommands. Each registers its flags on a CLI11 subcommand and returns the
// function that runs it; main.cpp turns errors into one line on stderr and the exit code
// (0 success, 1 runtime error, 2 usage error).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>

namespace kindling::app {

using Command = std::function<int()>;

Command add_train(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_study(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_losses(CLI::App& app);
Command add_info(CLI::App& app);
Command add_export(CLI::App& app);

}  // namespace kindling::app
