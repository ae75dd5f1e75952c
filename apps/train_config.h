// Everything one training run needs, filled from the command line (train and study share the
// flags) and written to <out>/config.json so a run can be read back and resumed.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kindling::app {

struct DataFlags {
  std::string data = "fashion-mnist";
  std::string data_dir;
  int64_t limit_test = 0;  // 0: the whole test set
  int64_t batch_size = 128;
  std::string device = "cpu";
  int threads = 0;                 // 0: KINDLING_NUM_THREADS or the core count
  int workers = 1;                 // prefetch threads of the loader
  std::string precision = "fp32";  // the CPU's GEMMs: fp32 or bf16 (core/precision.h)
};

struct TrainConfig {
  DataFlags data;
  std::string model = "resnet20";
  std::string loss = "ce";
  int64_t epochs = 10;
  double lr = 0.1;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 5e-4;
  std::string optimizer = "sgd";
  std::string schedule = "cosine";
  std::vector<int64_t> milestones;  // multistep: epochs at which the lr is multiplied by gamma
  int64_t step_size = 30;           // step: every step_size epochs
  double gamma = 0.1;
  double warmup = 0;          // linear warm-up, in epochs (fractions allowed)
  double clip_grad_norm = 0;  // 0: off
  uint64_t seed = 0;
  // Fraction of the training set (after --limit-train) held out for validation, in [0, 1): 0 holds
  // nothing out; otherwise round(fraction * size) samples drawn from --seed (data::split_validation)
  // and both parts non-empty. The validation set's logits fit the temperature (losses/temperature.h).
  double val_split = 0;
  int64_t limit_train = 0;   // 0: the whole training set
  int augment = -1;          // -1: the dataset's default, 0 off, 1 on
  int64_t crop_padding = 4;  // augmentation's random crop: zero pixels padded on each side
  std::string out;
  std::string resume;
  int64_t stop_after_epochs = 0;  // run at most this many epochs now (0: to --epochs); resume later
  bool deterministic = false;
  bool quiet = false;
  // Data-parallel runs (mpirun -np N kindling train): see docs/distributed.md.
  bool sync_bn = false;       // BatchNorm statistics over the global batch instead of each rank's
  double dist_timeout = 600;  // seconds a collective may wait before the job aborts
};

// The values a numeric flag takes: [low, high] (low excluded when low_open, high when high_open),
// whole numbers only when `whole`; always finite.
struct NumberRange {
  double low, high;
  bool whole = false;
  bool low_open = false;
  bool high_open = false;
};
// A CLI11 check for a numeric flag: the value parses completely, is finite and in `range`; else
// "must be <the range in words>, got '<text>'" (CLI11 prefixes the flag's name; exit 2).
CLI::Validator in_range(NumberRange range);

// Registers the data flags (train, eval, study, bench share them).
void add_data_flags(CLI::App& app, DataFlags& flags);
// Registers every train flag.
void add_train_flags(CLI::App& app, TrainConfig& config);
// Checks values the parser cannot (ranges, names); throws UsageError listing what is valid.
void validate(const TrainConfig& config);

nlohmann::json to_json(const TrainConfig& config);
TrainConfig config_from_json(const nlohmann::json& j);

}  // namespace kindling::app
