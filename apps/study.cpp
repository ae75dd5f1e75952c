// `kindling study`: trains every (loss, seed) with everything else fixed, then writes study.md and
// study.json (apps/study_report.h: last and best epoch, mean ± std over seeds from two up, NLL and
// ECE raw and at the temperature fitted on --val-split), curves.csv, curves_mean.csv,
// reliability.dat and their plots (apps/study_plot.h). Each finished run leaves
// runs/<loss>-seed<k>/done.json, so a study that was stopped, at any moment, picks up where it was
// and ends with the table an uninterrupted one makes. The study's flags are recorded in its
// config.json; a rerun whose flags would change the runs' results is refused. The study folder is
// locked like a run's (apps/run_folder.h) and every file is replaced atomically.
#include "apps/commands.h"
#include "apps/run_folder.h"
#include "apps/signals.h"
#include "apps/study_plot.h"
#include "apps/study_report.h"
#include "apps/trainer.h"
#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "losses/loss.h"
#include "losses/registry.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kindling::app {
namespace fs = std::filesystem;

namespace {

// "ce,focal:gamma=2,alpha=1,lace" -> {"ce", "focal:gamma=2,alpha=1", "lace"}: a piece with '=' but
// no ':' continues the previous spec's hyperparameters.
std::vector<std::string> split_loss_specs(const std::string& text) {
  if (text == "all") {
    std::vector<std::string> names;
    for (const LossInfo& info : loss_registry()) names.push_back(info.name);
    return names;
  }
  std::vector<std::string> specs;
  std::stringstream stream(text);
  std::string piece;
  while (std::getline(stream, piece, ',')) {
    if (piece.empty()) continue;
    if (!specs.empty() && piece.find('=') != std::string::npos && piece.find(':') == std::string::npos)
      specs.back() += "," + piece;
    else
      specs.push_back(piece);
  }
  return specs;
}

std::string run_name(const std::string& spec, int seed) {
  std::string name = spec;
  for (char& ch : name)
    if (ch == ':' || ch == ',' || ch == '=' || ch == '/') ch = '_';
  return fmt::format("{}-seed{}", name, seed);
}

// The flags that do not change what a run computes: a study may resume under other values.
bool result_neutral(const std::string& key) {
  for (const char* neutral : {"data_dir", "device", "threads", "workers", "dist_timeout", "deterministic"})
    if (key == neutral) return true;
  return false;
}

// "--val-split 0.1, not 0.2; --epochs 2, not 3": the flags `recorded` (a config.json) gives
// otherwise than `wanted`; keys a config lacks (written by an older kindling) are not compared.
std::string differences(const nlohmann::json& recorded, const nlohmann::json& wanted) {
  std::string text;
  for (const auto& [key, value] : wanted.items()) {
    if (result_neutral(key) || !recorded.contains(key) || recorded.at(key) == value) continue;
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    text += fmt::format("{}--{} {}, not {}", text.empty() ? "" : "; ", flag, recorded.at(key).dump(),
                        value.dump());
  }
  return text;
}

// A config.json written earlier into `dir` must agree with `wanted`: UsageError naming the folder
// and the flags otherwise, before anything is trained or rewritten.
void require_same_config(const fs::path& dir, const nlohmann::json& wanted, const std::string& what) {
  const fs::path file = dir / "config.json";
  if (!fs::exists(file)) return;
  std::ifstream in(file);
  const nlohmann::json recorded = nlohmann::json::parse(in, nullptr, false);
  KINDLING_CHECK(!recorded.is_discarded() && recorded.is_object(), FileError,
                 "study: {} is not a JSON object", file.string());
  const std::string diff = differences(recorded, wanted);
  if (!diff.empty())
    throw UsageError(
        fmt::format("--out {}: {} was made with {}; rerun with those flags or give another --out",
                    dir.string(), what, diff));
}

// Trains the run to its last epoch (resuming what a stopped study left) and marks it done. Returns
// false, with nothing marked, when --stop-after-epochs ended the training before the last epoch.
bool finish_run(TrainConfig config, const fs::path& run_dir) {
  const fs::path last = run_dir / "last.safetensors";
  bool complete = false;
  if (fs::exists(last)) {
    const CheckpointInfo info = read_checkpoint_info(last.string());
    if (info.epoch >= config.epochs) {
      RunFolder folder(run_dir.string());
      reconcile_run_folder(folder, last.string(), info);
      complete = true;
    } else {
      config.resume = last.string();
    }
  }
  if (!complete) {
    fmt::print("== study: {} seed {} ({})\n", config.loss, config.seed, run_dir.string());
    std::fflush(stdout);
    try {
      run_training(config);
    } catch (const Interrupted& e) {
      throw Interrupted(e.signal, {fmt::format("{} of {}", e.place.where, run_dir.string()),
                                   "run the same kindling study command again to resume"});
    }
    if (read_checkpoint_info(last.string()).epoch < config.epochs) return false;
  }
  double total = 0;
  for (const auto& row : read_metrics(run_dir / "metrics.jsonl")) total += row.value("seconds", 0.0);
  write_file_atomically((run_dir / "done.json").string(), nlohmann::json{{"seconds", total}}.dump() + "\n");
  return true;
}

TrainConfig run_config(const TrainConfig& base, const std::string& spec, int s, const fs::path& run_dir) {
  TrainConfig config = base;
  config.loss = spec;
  config.seed = base.seed + uint64_t(s);
  config.out = run_dir.string();
  config.resume.clear();
  return config;
}

// One finished run's figures, from its metrics.jsonl and done.json; its last epoch's reliability
// diagrams are added to the loss's pooled ones.
SeedRun read_run(const fs::path& run_dir, LossResult& result) {
  const fs::path metrics = run_dir / "metrics.jsonl";
  const auto rows = read_metrics(metrics);
  KINDLING_CHECK(!rows.empty(), FileError, "study: {} has no epochs", metrics.string());
  SeedRun run;
  for (const auto& row : rows) run.epochs.push_back(epoch_figures(row, metrics.string()));
  result.reliability.add(rows.back().value("test_reliability", nlohmann::json()));
  result.reliability_scaled.add(rows.back().value("test_reliability_scaled", nlohmann::json()));
  std::ifstream done_in(run_dir / "done.json");
  run.seconds = nlohmann::json::parse(done_in).at("seconds").get<double>();
  return run;
}

void write_plots(const fs::path& out, const StudyHeader& header, const std::vector<LossResult>& results) {
  const std::string seeds =
      header.seeds > 1 ? fmt::format("{} seeds", header.seeds) : std::string("one seed");
  CurvesPlot curves;
  curves.title = fmt::format("{} on {}, test set per epoch: {}", header.model, header.data,
                             header.seeds > 1 ? "mean over " + seeds + ", band from min to max" : seeds);
  curves.data_file = (out / "curves_mean.csv").string();
  curves.epochs = header.epochs;
  curves.seeds = header.seeds;
  ReliabilityPlot reliability;
  reliability.data_file = (out / "reliability.dat").string();
  reliability.scaled = header.val_split > 0;
  reliability.title =
      fmt::format("Reliability on the test set after epoch {}, {}: {}", header.epochs,
                  header.seeds > 1 ? "pooled over " + seeds : seeds,
                  reliability.scaled ? "raw (blue circles) and at the temperature T fitted on validation "
                                       "(red squares); dashed: calibrated"
                                     : "raw (blue circles; no --val-split: no temperature scaling); "
                                       "dashed: calibrated");
  for (const LossResult& loss : results) {
    curves.series.push_back(loss.spec);
    std::string title = loss.spec;
    if (reliability.scaled) {
      std::vector<double> temperatures;
      for (const SeedRun& run : loss.runs) temperatures.push_back(run.epochs.back().temperature);
      title += " (T = " + format_stat(temperatures, 3) + ")";
    }
    reliability.panels.push_back({title, !loss.reliability.empty(), !loss.reliability_scaled.empty()});
  }
  render_plot(out, "curves", [&](const std::string& png) { return curves_script(curves, png); });
  render_plot(out, "reliability",
              [&](const std::string& png) { return reliability_script(reliability, png); });
}

int run_study(TrainConfig base, const std::string& losses, int seeds) {
  if (base.out.empty()) base.out = "study";
  const fs::path out = base.out;
  const std::vector<std::string> specs = split_loss_specs(losses);
  if (specs.empty())
    throw UsageError("--losses: no loss given; e.g. --losses ce,focal:gamma=2 or --losses all");
  for (const std::string& spec : specs) {
    try {
      Loss check(spec);
    } catch (const ValueError& e) {
      throw UsageError(fmt::format("--losses: {}", e.what()));
    }
  }
  validate(base);
  RunFolder folder(base.out);
  // The study's own flags, then each existing run's, before anything is trained or rewritten.
  nlohmann::json study_config = to_json(base);
  study_config.erase("loss");
  require_same_config(out, study_config, "the study there");
  for (const std::string& spec : specs)
    for (int s = 0; s < seeds; ++s) {
      const fs::path run_dir = out / "runs" / run_name(spec, s);
      require_same_config(run_dir, to_json(run_config(base, spec, s, run_dir)),
                          "its run " + run_dir.string());
    }
  study_config["losses"] = specs;
  study_config["seeds"] = seeds;
  write_file_atomically((out / "config.json").string(), study_config.dump(2) + "\n");
  fs::create_directories(out / "runs");

  const StudyHeader header{base.model, base.data.data, base.epochs, seeds, base.val_split};
  std::vector<LossResult> results;
  for (const std::string& spec : specs) {
    LossResult result;
    result.spec = spec;
    for (int s = 0; s < seeds; ++s) {
      const fs::path run_dir = out / "runs" / run_name(spec, s);
      if (!fs::exists(run_dir / "done.json") && !finish_run(run_config(base, spec, s, run_dir), run_dir)) {
        // --stop-after-epochs: this invocation's epochs are done; the next one goes on from here.
        fmt::print("== study: stopped by --stop-after-epochs in {}; run the same command again to go on\n",
                   run_dir.string());
        return 0;
      }
      result.runs.push_back(read_run(run_dir, result));
    }
    results.push_back(std::move(result));
  }
  const std::string table = study_markdown(header, results);
  write_file_atomically((out / "curves.csv").string(), curves_csv(results));
  write_file_atomically((out / "curves_mean.csv").string(), curves_mean_csv(results, base.epochs));
  write_file_atomically((out / "reliability.dat").string(), reliability_dat(results, base.val_split > 0));
  write_file_atomically((out / "study.md").string(), table);
  write_file_atomically((out / "study.json").string(), study_json(header, results).dump(2) + "\n");
  write_plots(out, header, results);
  fmt::print("{}", table);
  return 0;
}

}  // namespace

Command add_study(CLI::App& app) {
  struct Flags {
    TrainConfig base;
    std::string losses = "ce";
    int seeds = 3;
  };
  auto flags = std::make_shared<Flags>();
  add_train_flags(app, flags->base);
  app.add_option("--losses", flags->losses, "comma-separated loss specs, or all")->capture_default_str();
  app.add_option("--seeds", flags->seeds, "seeds per loss, 1 to 1000 (0..N-1 added to --seed)")
      ->check(in_range({1, 1000, true}));
  return [flags] {
    StopOnSignals stop_on_signals;
    try {
      return run_study(flags->base, flags->losses, flags->seeds);
    } catch (const Interrupted& e) {
      std::fflush(stdout);
      fmt::print(stderr, "kindling: {}\n", e.what());
      return exit_code(e);
    }
  };
}

}  // namespace kindling::app
