// What `kindling study` writes from its finished runs: study.md, study.json, curves.csv,
// curves_mean.csv and reliability.dat (the plots' data; apps/study_plot.h draws them). Pure text
// from figures, so the tests check the formatting without training anything.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kindling::app {

// One epoch of one run, from its metrics.jsonl row (apps/trainer.h: EpochMetrics::to_json).
struct EpochFigures {
  int64_t epoch = 0;
  double top1 = 0, nll = 0, ece15 = 0, ece10 = 0;  // top1 as a fraction
  bool has_validation = false;                     // the rest only with --val-split
  double val_top1 = 0, temperature = 0, nll_scaled = 0, ece15_scaled = 0, ece10_scaled = 0;
};
// FileError naming `source` when a key the trainer always writes is missing or not a number.
EpochFigures epoch_figures(const nlohmann::json& row, const std::string& source);

// A reliability diagram summed over runs: per confidence bin (b/n, (b+1)/n], the rows, the right
// ones and the sum of their confidences.
struct PooledReliability {
  std::vector<int64_t> count;
  std::vector<double> correct, confidence_sum;
  // Adds a metrics row's {"count", "accuracy", "confidence"} diagram; a missing one adds nothing.
  void add(const nlohmann::json& diagram);
  bool empty() const;
};

struct SeedRun {
  std::vector<EpochFigures> epochs;  // 1..E in order
  double seconds = 0;
};
struct LossResult {
  std::string spec;
  std::vector<SeedRun> runs;                          // one per seed
  PooledReliability reliability, reliability_scaled;  // the last epoch's test set, over the seeds
};
struct StudyHeader {
  std::string model, data;
  int64_t epochs = 0;
  int seeds = 0;
  double val_split = 0;  // 0: no temperature scaling
};

// The epoch a seed's run reports as its best: the first with the highest validation top-1 when the
// run has a validation split, else the first with the highest test top-1.
size_t best_epoch_index(const SeedRun& run);
// "91.57" for one value (n = 1: no spread is measured), "91.57 ± 0.12" (sample std) from two up,
// "—" for none.
std::string format_stat(const std::vector<double>& values, int decimals);

std::string study_markdown(const StudyHeader& header, const std::vector<LossResult>& losses);
nlohmann::json study_json(const StudyHeader& header, const std::vector<LossResult>& losses);
// loss,seed,epoch,test_accuracy,test_nll: every epoch of every run (accuracy as a fraction).
std::string curves_csv(const std::vector<LossResult>& losses);
// A header line, then per epoch: epoch, and per loss (in order) the mean, min and max over seeds of
// the test accuracy (%), then of the test NLL: column 2 + 6 i + k for loss i.
std::string curves_mean_csv(const std::vector<LossResult>& losses, int64_t epochs);
// gnuplot blocks (two blank lines apart): per loss the raw diagram, then, when `scaled`, the one at
// T; rows "bin_centre confidence accuracy count" for the non-empty bins (an empty diagram: the one
// row "-1 -1 -1 0", so that block i is always gnuplot's index i).
std::string reliability_dat(const std::vector<LossResult>& losses, bool scaled);

}  // namespace kindling::app
