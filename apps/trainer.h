// One training run: data, model, loss, optimizer, schedule, the epoch loop, evaluation,
// metrics.jsonl and checkpoints. `kindling train` runs one; `kindling study` runs many.
#pragma once
#include "apps/train_config.h"
#include "core/tensor.h"
#include "data/image_dataset.h"
#include "losses/loss.h"
#include "losses/metrics.h"
#include "nn/module.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace kindling::app {

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based: epochs completed
  double lr = 0, train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0, test_nll = 0, test_ece = 0, test_ece10 = 0;
  double images_per_s = 0, seconds = 0;
  std::vector<ReliabilityBin> test_reliability;  // 15 bins, those of test_ece
  // Only with --val-split: the validation set's figures, the temperature T fitted on its logits
  // (losses/temperature.h), and the test set's NLL, ECE and reliability diagram at T.
  bool has_validation = false;
  double val_accuracy = 0, val_nll = 0, temperature = 0;
  double test_nll_scaled = 0, test_ece_scaled = 0, test_ece10_scaled = 0;
  std::vector<ReliabilityBin> test_reliability_scaled;
  nlohmann::json to_json() const;
};

struct RunResult {
  std::vector<EpochMetrics> epochs;  // those run by this call (after a resume: the later ones)
  double total_seconds = 0;
};

// Sets kindling's thread count from --threads (0 keeps the default).
void apply_threads(int threads);
// --precision: "fp32" or "bf16" (core/precision.h) for the CPU's GEMMs; bf16 is refused with
// --device cuda (the CUDA backend computes in fp32) and on a CPU without AVX512-BF16.
void apply_precision(const std::string& precision, const std::string& device);

// Trains as `config` says, writing to config.out when set. Throws kindling errors; a non-finite
// loss stops with an Error naming the epoch and batch, leaving the last checkpoint intact.
RunResult run_training(const TrainConfig& config);

// Evaluation over a dataset: metrics plus the mean loss under `loss` (when given).
struct EvalResult {
  ClassificationMetrics metrics;
  double mean_loss = 0;
  Tensor logits;  // [size, classes] f32 on the host, in dataset order
};
EvalResult evaluate(Module& model, const data::ImageDataset& dataset, int64_t batch_size, Device device,
                    const Loss* loss, int workers);

}  // namespace kindling::app
