#include "apps/trainer.h"

#include "apps/data_parallel.h"
#include "apps/progress.h"
#include "apps/run_folder.h"
#include "apps/signals.h"
#include "core/atomic_file.h"
#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/parallel.h"
#include "core/precision.h"
#include "core/rng.h"
#include "core/test_point.h"
#include "data/datasets.h"
#include "data/loader.h"
#include "losses/temperature.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "ops/ops.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <optional>

namespace kindling::app {

namespace {
// {"count": [...], "accuracy": [...], "confidence": [...]}, per bin, rounded to 6 decimals.
nlohmann::json reliability_json(const std::vector<ReliabilityBin>& diagram) {
  nlohmann::json count = nlohmann::json::array(), accuracy = count, confidence = count;
  for (const ReliabilityBin& bin : diagram) {
    count.push_back(bin.count);
    accuracy.push_back(std::round(bin.accuracy * 1e6) / 1e6);
    confidence.push_back(std::round(bin.confidence * 1e6) / 1e6);
  }
  return {{"count", count}, {"accuracy", accuracy}, {"confidence", confidence}};
}
}  // namespace

nlohmann::json EpochMetrics::to_json() const {
  nlohmann::json j = {{"epoch", epoch},           {"lr", lr},
                      {"train_loss", train_loss}, {"train_accuracy", train_accuracy},
                      {"test_loss", test_loss},   {"test_accuracy", test_accuracy},
                      {"test_nll", test_nll},     {"test_ece", test_ece},
                      {"test_ece10", test_ece10}, {"images_per_s", images_per_s},
                      {"seconds", seconds}};
  if (!test_reliability.empty()) j["test_reliability"] = reliability_json(test_reliability);
  if (has_validation) {
    j["val_accuracy"] = val_accuracy;
    j["val_nll"] = val_nll;
    j["temperature"] = temperature;
    j["test_nll_scaled"] = test_nll_scaled;
    j["test_ece_scaled"] = test_ece_scaled;
    j["test_ece10_scaled"] = test_ece10_scaled;
    if (!test_reliability_scaled.empty())
      j["test_reliability_scaled"] = reliability_json(test_reliability_scaled);
  }
  return j;
}

void apply_threads(int threads) {
  if (threads > 0) set_num_threads(threads);
}

void apply_precision(const std::string& precision, const std::string& device) {
  const Precision p = parse_precision(precision);
  if (p == Precision::bf16 && device != "cpu")
    throw UsageError("--precision bf16 is a CPU setting: the CUDA backend computes in fp32");
  set_gemm_precision(p);
}

namespace {

std::string schedule_spec(const TrainConfig& c) {
  std::string spec = c.schedule;
  if (c.schedule == "step") spec += fmt::format(":size={},gamma={}", c.step_size, c.gamma);
  if (c.schedule == "multistep")
    spec += fmt::format(":milestones={},gamma={}", fmt::join(c.milestones, "/"), c.gamma);
  if (c.warmup > 0 && c.schedule != "onecycle")
    spec += fmt::format("{}warmup={}", spec.find(':') == std::string::npos ? ":" : ",", c.warmup);
  return spec;
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, Module& model) {
  if (c.optimizer == "adamw") {
    AdamWOptions o;
    o.lr = c.lr;
    o.weight_decay = c.weight_decay;
    return std::make_unique<AdamW>(model.named_parameters(), o);
  }
  SgdOptions o;
  o.lr = c.lr;
  o.momentum = c.momentum;
  o.weight_decay = c.weight_decay;
  o.nesterov = c.nesterov;
  return std::make_unique<Sgd>(model.named_parameters(), o);
}

// Counts argmax(logits) == labels without leaving the device until the count.
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  return int64_t(sum(eq(argmax(logits, 1), labels)).item<float>());
}

}  // namespace

namespace {

Loss make_loss(const TrainConfig& c) {
  try {
    return Loss(c.loss);
  } catch (const ValueError& e) {
    throw UsageError(fmt::format("--loss: {}", e.what()));
  }
}

struct Datasets {
  data::ImageDataset train, test, validation;  // validation: empty without --val-split
};

Datasets load_datasets(const TrainConfig& c) {
  Datasets d;
  d.train = data::load_dataset(c.data.data, true, c.data.data_dir);
  d.test = data::load_dataset(c.data.data, false, c.data.data_dir);
  if (c.limit_train > 0) d.train = data::limit(d.train, c.limit_train);
  if (c.data.limit_test > 0) d.test = data::limit(d.test, c.data.limit_test);
  if (c.val_split > 0) {
    try {
      auto split = data::split_validation(d.train, c.val_split, c.seed);
      d.train = std::move(split.train);
      d.validation = std::move(split.validation);
    } catch (const ValueError& e) {
      throw UsageError(fmt::format("--val-split: {}", e.what()));
    }
  }
  return d;
}

// Everything a run holds from one epoch to the next.
struct Run {
  explicit Run(const TrainConfig& c) : config(c), device(Device::parse(c.data.device)), loss(make_loss(c)) {}
  const TrainConfig& config;
  Device device;
  Loss loss;
  Datasets data;
  std::optional<RunFolder> folder;  // none without --out
  std::shared_ptr<Module> model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<data::Loader> loader;
  std::unique_ptr<Schedule> schedule;
  int64_t epochs_done = 0, step = 0;
  double best_accuracy = -1;
  int64_t best_epoch = 0;
  std::string last_checkpoint;            // the newest complete checkpoint ("" before the first)
  DataParallel* data_parallel = nullptr;  // this rank's part of the job (one rank without mpirun)
};

// "training stopped; ..." with what there is to resume from.
std::string stopped_text(const Run& run) {
  if (run.last_checkpoint.empty()) return "training stopped; no checkpoint was written yet";
  return fmt::format("training stopped; the last good checkpoint is {} (epoch {})", run.last_checkpoint,
                     run.epochs_done);
}

// Where to resume from after a stop, for the one line the command prints.
std::string resume_hint(const Run& run) {
  if (run.last_checkpoint.empty()) return "no checkpoint was written yet, so there is nothing to resume";
  return fmt::format("resume with --resume {} ({} of {} epochs done)", run.last_checkpoint, run.epochs_done,
                     run.config.epochs);
}

// Loads --resume into the model and optimizer, and makes the output folder agree with it.
void resume(Run& run) {
  const TrainConfig& c = run.config;
  const CheckpointInfo info = read_checkpoint_info(c.resume);
  KINDLING_CHECK(info.model.empty() || info.model == c.model, ValueError,
                 "checkpoint {} holds a {}, but --model is {}", c.resume, info.model, c.model);
  KINDLING_CHECK(info.epoch < c.epochs, ValueError, "checkpoint {} has already completed {} of --epochs {}",
                 c.resume, info.epoch, c.epochs);
  run.best_accuracy = metadata_number(info, kBestAccuracyKey, c.resume, -1);
  run.best_epoch = int64_t(metadata_number(info, kBestEpochKey, c.resume, 0));
  load_checkpoint(c.resume, run.model->state_dict(), run.optimizer->state_dict());
  run.epochs_done = info.epoch;
  run.step = info.step;
  default_generator().set_state(info.rng);
  run.last_checkpoint = c.resume;
  if (run.folder)
    for (const std::string& line : reconcile_run_folder(*run.folder, c.resume, info))
      if (!c.quiet) fmt::print("resume: {}\n", line);
}

// One optimizer step on one batch; returns the batch's loss and adds its correct count.
double train_step(Run& run, const data::Batch& batch, int64_t epoch, int64_t& correct) {
  const Tensor images = batch.images.to(run.device);
  const Tensor labels = batch.labels.to(run.device);
  const auto where = [&] { return fmt::format("epoch {}, batch {}", epoch + 1, batch.index + 1); };
  const Tensor logits = (*run.model)(images);
  const int64_t local_count = labels.numel(), global_count = batch.global_size;
  Tensor batch_loss;
  double value = 0;
  try {
    // Throws, naming the row, on a bad label or a non-finite logit: on a GPU when the value is read.
    // The value is the global batch's (summed over ranks), so every rank stops on a non-finite one.
    batch_loss = run.loss(logits, labels);
    value = run.data_parallel->global_loss(batch_loss, local_count, global_count, run.step);
  } catch (const ValueError& e) {
    throw Error(fmt::format("{} at {}: {}", e.what(), where(), stopped_text(run)));
  }
  if (!std::isfinite(value))
    throw Error(fmt::format("non-finite loss ({}) at {}: {}", value, where(), stopped_text(run)));
  run.optimizer->zero_grad();
  run.data_parallel->backward(batch_loss, local_count, global_count);
  if (run.config.clip_grad_norm > 0) clip_grad_norm(run.model->parameters(), run.config.clip_grad_norm);
  run.optimizer->step();
  ++run.step;
  NoGradGuard no_grad;
  correct += run.data_parallel->sum(count_correct(logits, labels));
  return value;
}

// Evaluation at the end of `epoch`, naming the epoch and the set when a value is not finite.
EvalResult evaluate_after(Run& run, const data::ImageDataset& set, const char* set_name, const Loss* loss,
                          int64_t epoch) {
  try {
    return evaluate(*run.model, set, run.config.data.batch_size, run.device, loss, run.config.data.workers);
  } catch (const ValueError& e) {
    throw Error(
        fmt::format("{} of the {} set after epoch {}: {}", e.what(), set_name, epoch + 1, stopped_text(run)));
  }
}

EpochMetrics train_epoch(Run& run, int64_t epoch) {
  const TrainConfig& c = run.config;
  run.loss.set_progress(epoch, c.epochs);
  run.model->train();
  run.loader->start_epoch(epoch);
  const int64_t batches = run.loader->num_batches();
  Progress progress(fmt::format("epoch {}/{}", epoch + 1, c.epochs), batches, c.quiet);
  double loss_sum = 0, lr = 0;
  int64_t seen = 0, correct = 0;
  while (auto batch = run.loader->next()) {
    lr = run.schedule->lr(epoch, batch->index);
    run.optimizer->set_lr(lr);
    const double value = train_step(run, *batch, epoch, correct);
    seen += batch->global_size;
    loss_sum += value * double(batch->global_size);
    progress.update(batch->index + 1, seen, loss_sum / double(seen), double(correct) / double(seen));
    test_point("batch");
    stop_if_requested([&] {
      return Interrupted::Where{
          fmt::format("in epoch {} at batch {} of {}", epoch + 1, batch->index + 1, batches),
          resume_hint(run)};
    });
  }
  EpochMetrics m;
  m.epoch = epoch + 1;
  m.lr = lr;
  m.images_per_s = progress.images_per_second();
  m.seconds = progress.finish();
  m.train_loss = loss_sum / double(std::max<int64_t>(seen, 1));
  m.train_accuracy = double(correct) / double(std::max<int64_t>(seen, 1));
  run.data_parallel->sync_buffers(*run.model);  // the ranks' BatchNorm running statistics, averaged
  const EvalResult test = evaluate_after(run, run.data.test, "test", &run.loss, epoch);
  m.test_loss = test.mean_loss;
  m.test_accuracy = test.metrics.top1;
  m.test_nll = test.metrics.nll;
  m.test_ece = test.metrics.ece15;
  m.test_ece10 = test.metrics.ece10;
  m.test_reliability = test.metrics.reliability;
  if (run.data.validation.size() > 0) {
    const data::ImageDataset& validation = run.data.validation;
    const EvalResult val = evaluate_after(run, validation, "validation", nullptr, epoch);
    m.has_validation = true;
    m.val_accuracy = val.metrics.top1;
    m.val_nll = val.metrics.nll;
    m.temperature = fit_temperature(val.logits, from_vector(validation.labels, {validation.size()}));
    if (std::isfinite(m.temperature)) {
      const Tensor test_labels = from_vector(run.data.test.labels, {run.data.test.size()});
      const ClassificationMetrics scaled =
          classification_metrics(scale_logits(test.logits, m.temperature), test_labels);
      m.test_nll_scaled = scaled.nll;
      m.test_ece_scaled = scaled.ece15;
      m.test_ece10_scaled = scaled.ece10;
      m.test_reliability_scaled = scaled.reliability;
    } else {
      m.test_nll_scaled = m.test_ece_scaled = m.test_ece10_scaled = NAN;
    }
  }
  return m;
}

// The epoch's files, in the order that keeps the folder resumable at every moment: last, then best,
// then the metrics line (each checkpoint carries that line, so a resume restores it).
void save_epoch(Run& run, const EpochMetrics& m) {
  const TrainConfig& c = run.config;
  const bool best = m.test_accuracy > run.best_accuracy;
  if (best) {
    run.best_accuracy = m.test_accuracy;
    run.best_epoch = m.epoch;
  }
  run.epochs_done = m.epoch;
  if (!run.folder) return;
  CheckpointInfo info;
  info.model = c.model;
  info.model_config =
      model_config_json(run.data.train.channels, run.data.train.num_classes, run.data.train.height);
  info.loss = run.loss.spec();
  info.epoch = m.epoch;
  info.step = run.step;
  info.rng = default_generator().state();
  info.extra[kBestAccuracyKey] = fmt::format("{}", run.best_accuracy);
  info.extra[kBestEpochKey] = fmt::format("{}", run.best_epoch);
  info.extra[kMetricsKey] = m.to_json().dump();
  info.extra["dataset"] = c.data.data;
  info.extra["config"] = to_json(c).dump();
  const NamedTensors model_state = run.model->state_dict();
  const NamedTensors optimizer_state = run.optimizer->state_dict();
  test_point("checkpoint-last");
  save_checkpoint(run.folder->file("last.safetensors"), model_state, optimizer_state, info);
  run.last_checkpoint = run.folder->file("last.safetensors");
  test_point("checkpoint-best");
  if (best) save_checkpoint(run.folder->file("best.safetensors"), model_state, optimizer_state, info);
  test_point("metrics-line");
  append_line_synced(run.folder->file("metrics.jsonl"), m.to_json().dump());
  test_point("epoch-end");
}

void print_epoch(const TrainConfig& c, const EpochMetrics& m) {
  if (c.quiet) return;
  fmt::print(
      "epoch {}/{}  lr {:.4f}  train loss {:.4f} acc {:.2f}%  test loss {:.4f} acc {:.2f}% nll {:.4f} "
      "ece {:.4f}{}  {:.0f} img/s  {:.1f} s\n",
      m.epoch, c.epochs, m.lr, m.train_loss, 100 * m.train_accuracy, m.test_loss, 100 * m.test_accuracy,
      m.test_nll, m.test_ece,
      m.has_validation
          ? fmt::format("  val acc {:.2f}%  T {:.3f}: test nll {:.4f} ece {:.4f}", 100 * m.val_accuracy,
                        m.temperature, m.test_nll_scaled, m.test_ece_scaled)
          : "",
      m.images_per_s, m.seconds);
  std::fflush(stdout);
}

}  // namespace

RunResult run_training(const TrainConfig& requested) {
  validate(requested);
  DataParallel data_parallel(requested);  // one rank without mpirun; only rank 0 prints and writes
  const TrainConfig& c = data_parallel.config();
  apply_threads(c.data.threads);
  apply_precision(c.data.precision, c.data.device);
  // Read by the CUDA backend before its first convolution: deterministic cuDNN algorithms only. The
  // CPU kernels are deterministic for a fixed thread count already.
  if (c.deterministic) setenv("KINDLING_DETERMINISTIC", "1", 1);
  Run run(c);
  run.data_parallel = &data_parallel;
  backend(run.device);  // fails early, with a clear message, when the device is missing
  if (!c.out.empty()) run.folder.emplace(c.out);  // locked and known writable before any work
  run.data = load_datasets(c);

  manual_seed(c.seed);
  const data::ImageDataset& train_set = run.data.train;
  run.model = make_model(c.model, train_set.channels, train_set.num_classes, train_set.height);
  run.model->to(run.device);
  run.optimizer = make_optimizer(c, *run.model);
  data::LoaderOptions loader_options;
  loader_options.batch_size = c.data.batch_size;
  loader_options.seed = c.seed;
  if (c.augment >= 0) loader_options.augment = c.augment == 1;
  loader_options.crop_padding = c.crop_padding;
  loader_options.num_workers = c.data.workers;
  data_parallel.shard(loader_options, train_set.size());
  run.loader = std::make_unique<data::Loader>(train_set, loader_options);
  run.schedule = make_schedule(schedule_spec(c), c.lr, c.epochs, run.loader->num_batches());

  if (!c.resume.empty()) resume(run);
  data_parallel.attach(*run.model, run.device);  // rank 0's parameters and buffers on every rank
  if (run.folder) {
    write_file_atomically(run.folder->file("config.json"), to_json(c).dump(2) + "\n");
    if (c.resume.empty()) write_file_atomically(run.folder->file("metrics.jsonl"), "");
  }
  if (!c.quiet)
    fmt::print("train {} on {} ({} train, {} test, {} classes), loss {}, {} epochs on {}, {} threads{}\n",
               c.model, c.data.data, train_set.size(), run.data.test.size(), train_set.num_classes,
               run.loss.spec(), c.epochs, run.device.str(), num_threads(),
               c.data.precision == "bf16" ? ", bf16 GEMMs" : "");

  RunResult result;
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t start_epoch = run.epochs_done;
  const int64_t end_epoch =
      c.stop_after_epochs > 0 ? std::min(c.epochs, start_epoch + c.stop_after_epochs) : c.epochs;
  for (int64_t epoch = start_epoch; epoch < end_epoch; ++epoch) {
    const EpochMetrics m = train_epoch(run, epoch);
    save_epoch(run, m);
    data_parallel.barrier();
    print_epoch(c, m);
    result.epochs.push_back(m);
    if (epoch + 1 < end_epoch)
      stop_if_requested([&] {
        return Interrupted::Where{fmt::format("after epoch {}", epoch + 1), resume_hint(run)};
      });
  }
  result.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  return result;
}

}  // namespace kindling::app
