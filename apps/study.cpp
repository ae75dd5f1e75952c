// `kindling study`: trains every (loss, seed) with everything else fixed, then writes study.md
// (top-1 mean ± std over seeds, NLL, ECE, time), study.json, curves.csv and a plot of test accuracy
// per epoch per loss. Each finished run leaves runs/<loss>-seed<k>/done.json, so a study that was
// stopped picks up where it was.
#include "apps/commands.h"
#include "apps/trainer.h"
#include "core/error.h"
#include "losses/loss.h"
#include "losses/registry.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
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

std::vector<nlohmann::json> read_metrics(const fs::path& file) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

void write_plot(const fs::path& out, const std::vector<std::string>& specs, int64_t epochs) {
  std::ofstream gp(out / "curves.gp");
  gp << "set terminal pngcairo size 900,600\nset output '" << (out / "curves.png").string() << "'\n"
     << "set datafile separator ','\nset key bottom right\nset xlabel 'epoch'\nset ylabel 'test accuracy (%)'\n"
     << "set xrange [1:" << epochs << "]\nplot ";
  for (size_t i = 0; i < specs.size(); ++i)
    gp << (i ? ", " : "") << "'" << (out / "curves_mean.csv").string() << "' using 1:" << (i + 2)
       << " with lines lw 2 title '" << specs[i] << "'";
  gp << "\n";
  gp.close();
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0 &&
      std::system(fmt::format("gnuplot '{}'", (out / "curves.gp").string()).c_str()) == 0) {
    fmt::print("plot: {}\n", (out / "curves.png").string());
  } else {
    fmt::print("plot: gnuplot not found; render with `gnuplot {}` (apt-get install gnuplot-nox)\n",
               (out / "curves.gp").string());
  }
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
  app.add_option("--seeds", flags->seeds, "seeds per loss (0..N-1 added to --seed)")->check(CLI::PositiveNumber);
  return [flags] {
    TrainConfig base = flags->base;
    if (base.out.empty()) base.out = "study";
    const fs::path out = base.out;
    const std::vector<std::string> specs = split_loss_specs(flags->losses);
    for (const std::string& spec : specs) {
      try {
        Loss check(spec);
      } catch (const ValueError& e) {
        throw UsageError(fmt::format("--losses: {}", e.what()));
      }
    }
    nlohmann::json study = {{"data", base.data.data}, {"model", base.model}, {"epochs", base.epochs},
                            {"seeds", flags->seeds}, {"losses", nlohmann::json::array()}};
    std::vector<std::vector<double>> mean_curve(specs.size(), std::vector<double>(size_t(base.epochs), 0.0));
    fs::create_directories(out / "runs");
    std::ofstream curves(out / "curves.csv");
    curves << "loss,seed,epoch,test_accuracy\n";
    std::string table =
        fmt::format("# Loss study: {} on {}, {} epochs, {} seeds\n\n| loss | top-1 (%) | NLL | ECE (15 bins) | "
                    "ECE (10 bins) | time per run (s) |\n|---|---|---|---|---|---|\n",
                    base.model, base.data.data, base.epochs, flags->seeds);
    for (size_t li = 0; li < specs.size(); ++li) {
      std::vector<double> top1, nll, ece15, ece10, seconds;
      for (int s = 0; s < flags->seeds; ++s) {
        const fs::path run_dir = out / "runs" / run_name(specs[li], s);
        const fs::path done = run_dir / "done.json";
        if (!fs::exists(done)) {
          TrainConfig config = base;
          config.loss = specs[li];
          config.seed = base.seed + uint64_t(s);
          config.out = run_dir.string();
          config.resume.clear();
          if (fs::exists(run_dir / "last.safetensors")) config.resume = (run_dir / "last.safetensors").string();
          fmt::print("== study: {} seed {} ({})\n", specs[li], config.seed, run_dir.string());
          std::fflush(stdout);
          run_training(config);
          double total = 0;
          for (const auto& row : read_metrics(run_dir / "metrics.jsonl")) total += row.at("seconds").get<double>();
          std::ofstream(done) << nlohmann::json{{"seconds", total}}.dump() << "\n";
        }
        const auto rows = read_metrics(run_dir / "metrics.jsonl");
        KINDLING_CHECK(!rows.empty(), FileError, "study: {} has no epochs", (run_dir / "metrics.jsonl").string());
        for (const auto& row : rows) {
          const int64_t epoch = row.at("epoch").get<int64_t>();
          const double accuracy = row.at("test_accuracy").get<double>();
          curves << specs[li] << "," << s << "," << epoch << "," << accuracy << "\n";
          if (epoch >= 1 && epoch <= base.epochs) mean_curve[li][size_t(epoch - 1)] += 100 * accuracy / flags->seeds;
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
      table += fmt::format("| {} | {:.2f} ± {:.2f} | {:.4f} ± {:.4f} | {:.4f} ± {:.4f} | {:.4f} ± {:.4f} | {:.0f} |\n",
                           specs[li], a.mean, a.std, n.mean, n.std, e.mean, e.std, e10.mean, e10.std, t.mean);
      study["losses"].push_back({{"loss", specs[li]}, {"top1_mean", a.mean}, {"top1_std", a.std},
                                 {"top1", top1}, {"nll_mean", n.mean}, {"ece_mean", e.mean},
                                 {"ece10_mean", e10.mean}, {"seconds_mean", t.mean}});
    }
    curves.close();
    std::ofstream mean_csv(out / "curves_mean.csv");
    for (int64_t ep = 0; ep < base.epochs; ++ep) {
      mean_csv << ep + 1;
      for (size_t li = 0; li < specs.size(); ++li) mean_csv << "," << mean_curve[li][size_t(ep)];
      mean_csv << "\n";
    }
    mean_csv.close();
    std::ofstream(out / "study.md") << table;
    std::ofstream(out / "study.json") << study.dump(2) << "\n";
    write_plot(out, specs, base.epochs);
    fmt::print("{}", table);
    return 0;
  };
}

}  // namespace kindling::app
