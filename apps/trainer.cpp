#include "apps/trainer.h"

#include "apps/data_parallel.h"
#include "apps/progress.h"
#include "core/autograd.h"
#include "core/checkpoint.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "data/datasets.h"
#include "data/loader.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "ops/ops.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace kindling::app {

nlohmann::json EpochMetrics::to_json() const {
  nlohmann::json j = {{"epoch", epoch},
                      {"lr", lr},
                      {"train_loss", train_loss},
                      {"train_accuracy", train_accuracy},
                      {"test_loss", test_loss},
                      {"test_accuracy", test_accuracy},
                      {"test_nll", test_nll},
                      {"test_ece", test_ece},
                      {"test_ece10", test_ece10},
                      {"images_per_s", images_per_s},
                      {"seconds", seconds}};
  if (val_accuracy >= 0) j["val_accuracy"] = val_accuracy;
  return j;
}

void apply_threads(int threads) {
  if (threads > 0) set_num_threads(threads);
}

namespace {

std::string schedule_spec(const TrainConfig& c) {
  std::string spec = c.schedule;
  if (c.schedule == "step") spec += fmt::format(":size={},gamma={}", c.step_size, c.gamma);
  if (c.schedule == "multistep") spec += fmt::format(":milestones={},gamma={}", fmt::join(c.milestones, "/"), c.gamma);
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

RunResult run_training(const TrainConfig& requested) {
  validate(requested);
  DataParallel data_parallel(requested);   // one rank without mpirun
  const TrainConfig& c = data_parallel.config();
  apply_threads(c.data.threads);
  // Read by the CUDA backend before its first convolution: deterministic cuDNN algorithms only. The
  // CPU kernels are deterministic for a fixed thread count already.
  if (c.deterministic) setenv("KINDLING_DETERMINISTIC", "1", 1);
  const Device device = Device::parse(c.data.device);
  backend(device);   // fails early, with a clear message, when the device is missing

  Loss loss = [&] {
    try {
      return Loss(c.loss);
    } catch (const ValueError& e) {
      throw UsageError(fmt::format("--loss: {}", e.what()));
    }
  }();

  data::ImageDataset train_set = data::load_dataset(c.data.data, true, c.data.data_dir);
  data::ImageDataset test_set = data::load_dataset(c.data.data, false, c.data.data_dir);
  if (c.limit_train > 0) train_set = data::limit(train_set, c.limit_train);
  if (c.data.limit_test > 0) test_set = data::limit(test_set, c.data.limit_test);
  data::ImageDataset validation_set;
  if (c.val_split > 0) {
    auto split = data::split_validation(train_set, c.val_split, c.seed);
    train_set = std::move(split.train);
    validation_set = std::move(split.validation);
  }

  manual_seed(c.seed);
  std::shared_ptr<Module> model = make_model(c.model, train_set.channels, train_set.num_classes, train_set.height);
  model->to(device);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(c, *model);

  data::LoaderOptions loader_options;
  loader_options.batch_size = c.data.batch_size;
  loader_options.seed = c.seed;
  if (c.augment >= 0) loader_options.augment = c.augment == 1;
  loader_options.crop_padding = c.crop_padding;
  loader_options.num_workers = c.data.workers;
  data_parallel.shard(loader_options, train_set.size());
  data::Loader loader(train_set, loader_options);
  const int64_t steps_per_epoch = loader.num_batches();
  std::unique_ptr<Schedule> schedule = make_schedule(schedule_spec(c), c.lr, c.epochs, steps_per_epoch);

  int64_t start_epoch = 0, step = 0;
  double best_accuracy = -1;
  if (!c.resume.empty()) {
    const CheckpointInfo info = read_checkpoint_info(c.resume);
    KINDLING_CHECK(info.model.empty() || info.model == c.model, ValueError,
                   "checkpoint {} holds a {}, but --model is {}", c.resume, info.model, c.model);
    load_checkpoint(c.resume, model->state_dict(), optimizer->state_dict());
    start_epoch = info.epoch;
    step = info.step;
    default_generator().set_state(info.rng);
    if (auto it = info.extra.find("best_accuracy"); it != info.extra.end()) best_accuracy = std::stod(it->second);
    KINDLING_CHECK(start_epoch < c.epochs, ValueError,
                   "checkpoint {} has already completed {} of --epochs {}", c.resume, start_epoch, c.epochs);
  }

  data_parallel.attach(*model, device);
  const std::filesystem::path out = c.out;
  if (!c.out.empty()) {
    std::filesystem::create_directories(out);
    std::ofstream(out / "config.json") << to_json(c).dump(2) << "\n";
    if (c.resume.empty()) std::ofstream(out / "metrics.jsonl", std::ios::trunc);
  }
  if (!c.quiet)
    fmt::print("train {} on {} ({} train, {} test, {} classes), loss {}, {} epochs on {}, {} threads\n", c.model,
               c.data.data, train_set.size(), test_set.size(), train_set.num_classes, loss.spec(), c.epochs,
               device.str(), num_threads());

  RunResult result;
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t end_epoch = c.stop_after_epochs > 0 ? std::min(c.epochs, start_epoch + c.stop_after_epochs) : c.epochs;
  for (int64_t epoch = start_epoch; epoch < end_epoch; ++epoch) {
    loss.set_progress(epoch, c.epochs);
    model->train();
    loader.start_epoch(epoch);
    Progress progress(fmt::format("epoch {}/{}", epoch + 1, c.epochs), steps_per_epoch, c.quiet);
    double loss_sum = 0, lr = 0;
    int64_t seen = 0, correct = 0;
    while (auto batch = loader.next()) {
      lr = schedule->lr(epoch, batch->index);
      optimizer->set_lr(lr);
      const Tensor images = batch->images.to(device);
      const Tensor labels = batch->labels.to(device);
      const std::string where = fmt::format("epoch {}, batch {}", epoch + 1, batch->index + 1);
      const std::string stopped =
          c.out.empty() ? "training stopped"
                        : fmt::format("training stopped; the last good checkpoint is {}", (out / "last.safetensors").string());
      const Tensor logits = (*model)(images);
      Tensor batch_loss;
      try {
        batch_loss = loss(logits, labels);   // throws, naming the row, on a non-finite logit
      } catch (const ValueError& e) {
        throw Error(fmt::format("{} at {}: {}", e.what(), where, stopped));
      }
      const int64_t n = batch->global_size;
      const double value = data_parallel.global_loss(batch_loss, labels.numel(), n, step);
      if (!std::isfinite(value)) throw Error(fmt::format("non-finite loss ({}) at {}: {}", value, where, stopped));
      optimizer->zero_grad();
      data_parallel.backward(batch_loss, labels.numel(), n);
      if (c.clip_grad_norm > 0) clip_grad_norm(model->parameters(), c.clip_grad_norm);
      optimizer->step();
      ++step;
      loss_sum += value * double(n);
      {
        NoGradGuard no_grad;
        correct += data_parallel.sum(count_correct(logits, labels));
      }
      seen += n;
      progress.update(batch->index + 1, seen, loss_sum / double(seen), double(correct) / double(seen));
    }
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = lr;
    m.images_per_s = progress.images_per_second();
    m.seconds = progress.finish();
    m.train_loss = loss_sum / double(std::max<int64_t>(seen, 1));
    m.train_accuracy = double(correct) / double(std::max<int64_t>(seen, 1));
    data_parallel.sync_buffers(*model);
    const EvalResult test = evaluate(*model, test_set, c.data.batch_size, device, &loss, c.data.workers);
    m.test_loss = test.mean_loss;
    m.test_accuracy = test.metrics.top1;
    m.test_nll = test.metrics.nll;
    m.test_ece = test.metrics.ece15;
    m.test_ece10 = test.metrics.ece10;
    if (validation_set.size() > 0)
      m.val_accuracy = evaluate(*model, validation_set, c.data.batch_size, device, nullptr, c.data.workers).metrics.top1;

    if (!c.out.empty()) {
      std::ofstream(out / "metrics.jsonl", std::ios::app) << m.to_json().dump() << "\n";
      const bool best = m.test_accuracy > best_accuracy;
      if (best) best_accuracy = m.test_accuracy;
      CheckpointInfo info;
      info.model = c.model;
      info.model_config = model_config_json(train_set.channels, train_set.num_classes, train_set.height);
      info.loss = loss.spec();
      info.epoch = epoch + 1;
      info.step = step;
      info.rng = default_generator().state();
      info.extra["best_accuracy"] = fmt::format("{}", best_accuracy);
      info.extra["dataset"] = c.data.data;
      info.extra["config"] = to_json(c).dump();
      const NamedTensors model_state = model->state_dict();
      const NamedTensors optimizer_state = optimizer->state_dict();
      save_checkpoint((out / "last.safetensors").string(), model_state, optimizer_state, info);
      if (best) save_checkpoint((out / "best.safetensors").string(), model_state, optimizer_state, info);
    }
    data_parallel.barrier();
    if (!c.quiet) {
      fmt::print("epoch {}/{}  lr {:.4f}  train loss {:.4f} acc {:.2f}%  test loss {:.4f} acc {:.2f}% nll {:.4f} "
                 "ece {:.4f}{}  {:.0f} img/s  {:.1f} s\n",
                 m.epoch, c.epochs, m.lr, m.train_loss, 100 * m.train_accuracy, m.test_loss, 100 * m.test_accuracy,
                 m.test_nll, m.test_ece, m.val_accuracy >= 0 ? fmt::format("  val acc {:.2f}%", 100 * m.val_accuracy) : "",
                 m.images_per_s, m.seconds);
      std::fflush(stdout);
    }
    result.epochs.push_back(m);
  }
  result.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  return result;
}

}  // namespace kindling::app
