// `kindling study`: trains every (loss, seed) with everything else fixed, then writes study.md
// (top-1 mean ± std over seeds, NLL, ECE, time), study.json, curves.csv and a plot of test accuracy
// per epoch per loss. Each finished run leaves runs/<loss>-seed<k>/done.json, so a study that was
// stopped, at any moment, picks up where it was and ends with the table an uninterrupted one makes.
// The study folder is locked like a run's (apps/run_folder.h) and every file is replaced atomically.
#include "apps/commands.h"
#include "apps/run_folder.h"
#include "apps/signals.h"
#include "apps/trainer.h"
#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "losses/loss.h"
#include "losses/registry.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <cmath>
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

struct Summary {
  double mean = 0, std = 0;
};
Summary summarise(const std::vector<double>& values) {
  Summary s;
  if (values.empty()) return s;
  for (double v : values) s.mean += v;
  s.mean /= double(values.size());
  if (values.size() > 1) {
    for (double v : values) s.std += (v - s.mean) * (v - s.mean);
    s.std = std::sqrt(s.std / double(values.size() - 1));   // sample std over seeds
  }
  return s;
}

// The last non-empty line of a command's output (gnuplot's error is its last line).
std::string last_line(const std::string& text) {
  std::stringstream stream(text);
  std::string line, last;
  while (std::getline(stream, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

// curves.gp, and curves.png when gnuplot is installed: mean test accuracy per epoch per loss, with
// points, so a one-epoch study plots too. gnuplot writes to a temporary renamed into place only on
// success, so a failure leaves no empty curves.png; its own error is reported on stderr.
void write_plot(const fs::path& out, const std::vector<std::string>& specs, int64_t epochs) {
  const std::string gp_path = (out / "curves.gp").string(), png_path = (out / "curves.png").string();
  const std::string png_tmp = png_path + ".tmp." + std::to_string(::getpid()) + ".0";
  std::string gp =
      "set terminal pngcairo size 900,600\nset output '" + png_tmp + "'\n" +
      "set datafile separator ','\nset key bottom right\nset xlabel 'epoch'\n" +
      "set ylabel 'test accuracy (%)'\nset xtics 1\n" +
      (epochs > 1 ? fmt::format("set xrange [1:{}]\n", epochs) : std::string("set xrange [0.5:1.5]\n")) +
      "plot ";
  for (size_t i = 0; i < specs.size(); ++i)
    gp += fmt::format("{}'{}' using 1:{} with linespoints lw 2 pt 7 title '{}'", i ? ", " : "",
                      (out / "curves_mean.csv").string(), i + 2, specs[i]);
  write_file_atomically(gp_path, gp + "\n");
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    fmt::print("plot: gnuplot not found; render with `gnuplot {}` (apt-get install gnuplot-nox)\n", gp_path);
    return;
  }
  std::string output;
  int status = -1;
  if (std::FILE* pipe = ::popen(fmt::format("gnuplot '{}' 2>&1", gp_path).c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
    status = ::pclose(pipe);
  }
  std::error_code error;
  if (status == 0 && fs::file_size(png_tmp, error) > 0 && !error) {
    fs::rename(png_tmp, png_path);
    fmt::print("plot: {}\n", png_path);
    return;
  }
  fs::remove(png_tmp, error);
  fmt::print(
      stderr, "kindling: warning: gnuplot failed on {}: {}\n", gp_path,
      output.empty() ? std::string("no output, exit status ") + std::to_string(status) : last_line(output));
}

// Brings one run to its end and writes its done.json: trains what is missing (resuming from its
// last checkpoint), or, when that checkpoint already holds every epoch (the study stopped before
// done.json), only makes the run's folder agree with it.
void finish_run(TrainConfig config, const fs::path& run_dir) {
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
  }
  double total = 0;
  for (const auto& row : read_metrics(run_dir / "metrics.jsonl")) total += row.value("seconds", 0.0);
  write_file_atomically((run_dir / "done.json").string(), nlohmann::json{{"seconds", total}}.dump() + "\n");
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
  fs::create_directories(out / "runs");
  nlohmann::json study = {{"data", base.data.data},
                          {"model", base.model},
                          {"epochs", base.epochs},
                          {"seeds", seeds},
                          {"losses", nlohmann::json::array()}};
  std::vector<std::vector<double>> mean_curve(specs.size(), std::vector<double>(size_t(base.epochs), 0.0));
  std::string curves = "loss,seed,epoch,test_accuracy\n";
  std::string table = fmt::format(
      "# Loss study: {} on {}, {} epochs, {} seeds\n\n| loss | top-1 (%) | NLL | ECE (15 bins) | "
      "ECE (10 bins) | time per run (s) |\n|---|---|---|---|---|---|\n",
      base.model, base.data.data, base.epochs, seeds);
  for (size_t li = 0; li < specs.size(); ++li) {
    std::vector<double> top1, nll, ece15, ece10, seconds;
    for (int s = 0; s < seeds; ++s) {
      const fs::path run_dir = out / "runs" / run_name(specs[li], s);
      const fs::path done = run_dir / "done.json";
      if (!fs::exists(done)) {
        TrainConfig config = base;
        config.loss = specs[li];
        config.seed = base.seed + uint64_t(s);
        config.out = run_dir.string();
        config.resume.clear();
        finish_run(config, run_dir);
      }
      const auto rows = read_metrics(run_dir / "metrics.jsonl");
      KINDLING_CHECK(!rows.empty(), FileError, "study: {} has no epochs",
                     (run_dir / "metrics.jsonl").string());
      for (const auto& row : rows) {
        const int64_t epoch = row.at("epoch").get<int64_t>();
        const double accuracy = row.at("test_accuracy").get<double>();
        curves += fmt::format("{},{},{},{}\n", specs[li], s, epoch, accuracy);
        if (epoch >= 1 && epoch <= base.epochs) mean_curve[li][size_t(epoch - 1)] += 100 * accuracy / seeds;
      }
      const auto& last = rows.back();
      top1.push_back(100 * last.at("test_accuracy").get<double>());
      nll.push_back(last.at("test_nll").get<double>());
      ece15.push_back(last.at("test_ece").get<double>());
      ece10.push_back(last.value("test_ece10", 0.0));
      std::ifstream done_in(done);
      seconds.push_back(nlohmann::json::parse(done_in).at("seconds").get<double>());
    }
    const Summary a = summarise(top1), n = summarise(nll), e = summarise(ece15), e10 = summarise(ece10),
                  t = summarise(seconds);
    table += fmt::format(
        "| {} | {:.2f} ± {:.2f} | {:.4f} ± {:.4f} | {:.4f} ± {:.4f} | {:.4f} ± {:.4f} | {:.0f} |\n",
        specs[li], a.mean, a.std, n.mean, n.std, e.mean, e.std, e10.mean, e10.std, t.mean);
    study["losses"].push_back({{"loss", specs[li]},
                               {"top1_mean", a.mean},
                               {"top1_std", a.std},
                               {"top1", top1},
                               {"nll_mean", n.mean},
                               {"ece_mean", e.mean},
                               {"ece10_mean", e10.mean},
                               {"seconds_mean", t.mean}});
  }
  std::string mean_csv;
  for (int64_t ep = 0; ep < base.epochs; ++ep) {
    mean_csv += std::to_string(ep + 1);
    for (size_t li = 0; li < specs.size(); ++li) mean_csv += fmt::format(",{}", mean_curve[li][size_t(ep)]);
    mean_csv += "\n";
  }
  write_file_atomically((out / "curves.csv").string(), curves);
  write_file_atomically((out / "curves_mean.csv").string(), mean_csv);
  write_file_atomically((out / "study.md").string(), table);
  write_file_atomically((out / "study.json").string(), study.dump(2) + "\n");
  write_plot(out, specs, base.epochs);
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
