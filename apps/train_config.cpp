#include "apps/train_config.h"

#include "core/error.h"
#include "data/datasets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace kindling::app {

namespace {

std::string number_text(double value, bool whole) {
  if (!whole) return fmt::format("{}", value);
  if (value >= 18446744073709551615.0) return "18446744073709551615";  // the largest uint64
  return fmt::format("{}", int64_t(value));
}

// "a whole number from 1 up", "a finite number above 0", "a finite number from 0 to 0.9".
std::string range_words(const NumberRange& r) {
  const std::string kind = r.whole ? "a whole number" : "a finite number";
  const std::string low = number_text(r.low, r.whole), high = number_text(r.high, r.whole);
  const bool unbounded = std::isinf(r.high);
  if (r.high_open && !unbounded)
    return fmt::format("{} {} {} and below {}", kind, r.low_open ? "above" : "at least", low, high);
  if (r.low_open)
    return unbounded ? fmt::format("{} above {}", kind, low)
                     : fmt::format("{} above {} and at most {}", kind, low, high);
  if (unbounded) return fmt::format("{} from {} up", kind, low);
  return fmt::format("{} from {} to {}", kind, low, high);
}

}  // namespace

CLI::Validator in_range(NumberRange r) {
  const std::string words = range_words(r);
  return CLI::Validator(
      [r, words](std::string& text) -> std::string {
        const char* begin = text.c_str();
        char* end = nullptr;
        errno = 0;
        const long double value = std::strtold(begin, &end);
        const bool parsed =
            end != begin && *end == '\0' && !std::isspace(static_cast<unsigned char>(text[0]));
        const bool whole_text = text.find_first_not_of("+0123456789") == std::string::npos;
        const bool ok = parsed && std::isfinite(double(value)) && (!r.whole || whole_text) &&
                        (r.low_open ? value > r.low : value >= r.low) &&
                        (r.high_open ? value < r.high : value <= r.high);
        return ok ? std::string() : fmt::format("must be {}, got '{}'", words, text);
      },
      words);
}

namespace {
constexpr double kNoLimit = std::numeric_limits<double>::infinity();
const NumberRange kCount{0, kNoLimit, true};            // 0, 1, 2, ...
const NumberRange kPositiveCount{1, kNoLimit, true};    // 1, 2, ...
const NumberRange kPositive{0, kNoLimit, false, true};  // > 0
const NumberRange kNonNegative{0, kNoLimit};            // >= 0
}  // namespace

void add_data_flags(CLI::App& app, DataFlags& f) {
  app.add_option("--data", f.data, "dataset: fashion-mnist, mnist, emnist-<split>, cifar10, cifar100")
      ->capture_default_str();
  app.add_option("--data-dir", f.data_dir, "directory holding the dataset files");
  app.add_option("--limit-test", f.limit_test, "use the first N test samples (0: all)")
      ->check(in_range(kCount));
  app.add_option("--batch-size", f.batch_size, "batch size")
      ->check(in_range(kPositiveCount))
      ->capture_default_str();
  app.add_option("--device", f.device, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--threads", f.threads,
                 "CPU threads, 0 to 256 (0: KINDLING_NUM_THREADS or all cores; more than the cores "
                 "oversubscribes them and is slower)")
      ->check(in_range({0, 256, true}));
  app.add_option("--workers", f.workers, "data prefetch threads, 1 to 64")->check(in_range({1, 64, true}));
  app.add_option("--precision", f.precision,
                 "the CPU's convolutions and matrix products: fp32, or bf16 (operands rounded to bfloat16, "
                 "sums in fp32; needs AVX512-BF16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
}

void add_train_flags(CLI::App& app, TrainConfig& c) {
  add_data_flags(app, c.data);
  app.add_option(
         "--model", c.model,
         "resnet20, resnet32, resnet44, resnet56, resnet110, resnet18, resnet34, resnet50, vgg11, vgg16")
      ->check(CLI::IsMember({"resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet18",
                             "resnet34", "resnet50", "vgg11", "vgg16"}))
      ->capture_default_str();
  app.add_option("--loss", c.loss, "loss spec name[:key=value,...] (see kindling losses)")
      ->capture_default_str();
  app.add_option("--epochs", c.epochs, "epochs")->check(in_range(kPositiveCount))->capture_default_str();
  app.add_option("--lr", c.lr, "peak learning rate")->check(in_range(kPositive))->capture_default_str();
  app.add_option("--momentum", c.momentum, "SGD momentum, 0 to 1")
      ->check(in_range({0, 1}))
      ->capture_default_str();
  app.add_flag("--nesterov", c.nesterov, "Nesterov momentum");
  app.add_option("--weight-decay", c.weight_decay, "weight decay (SGD: coupled; AdamW: decoupled)")
      ->check(in_range(kNonNegative))
      ->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "sgd or adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  app.add_option("--schedule", c.schedule, "step, multistep, cosine, onecycle or constant")
      ->check(CLI::IsMember({"step", "multistep", "cosine", "onecycle", "constant"}))
      ->capture_default_str();
  app.add_option("--milestones", c.milestones, "multistep: epochs where the lr is multiplied by --gamma")
      ->delimiter(',')
      ->check(in_range(kPositiveCount))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--step-size", c.step_size, "step: epochs between lr drops")
      ->check(in_range(kPositiveCount));
  app.add_option("--gamma", c.gamma, "step/multistep: lr factor")->check(in_range(kPositive));
  app.add_option("--warmup", c.warmup, "linear warm-up, in epochs")->check(in_range(kNonNegative));
  app.add_option("--clip-grad-norm", c.clip_grad_norm, "clip gradients to this global norm (0: off)")
      ->check(in_range(kNonNegative));
  app.add_option(
         "--seed", c.seed,
         "random seed, a whole number from 0 to 18446744073709551615 (weights, shuffling, augmentation)")
      ->check(in_range({0, 18446744073709551615.0, true}))
      ->capture_default_str();
  app.add_option("--val-split", c.val_split,
                 "fraction of the training set held out (drawn from --seed) to fit the temperature; 0: none")
      ->check(in_range({0, 1, false, false, true}));
  app.add_option("--limit-train", c.limit_train, "use the first N training samples (0: all)")
      ->check(in_range(kCount));
  app.add_flag("--augment,!--no-augment", c.augment, "random crop and flip (default: per dataset)");
  app.add_option("--crop-padding", c.crop_padding,
                 "augmentation: crop from the image zero-padded by this many pixels per side")
      ->check(in_range(kCount))
      ->capture_default_str();
  app.add_option("--out", c.out, "output directory (config.json, metrics.jsonl, checkpoints)");
  app.add_option("--resume", c.resume, "continue from this checkpoint")->check(CLI::ExistingFile);
  app.add_option("--stop-after-epochs", c.stop_after_epochs,
                 "stop after this many epochs of this invocation; --resume continues under the same schedule")
      ->check(in_range(kCount));
  app.add_flag("--deterministic", c.deterministic, "bit-reproducible: fixed algorithms, one data worker");
  app.add_flag("--quiet", c.quiet, "only the final line");
  app.add_flag("--sync-bn", c.sync_bn, "under mpirun: BatchNorm statistics over the global batch");
  app.add_option("--dist-timeout", c.dist_timeout, "under mpirun: seconds before a stalled collective aborts")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void validate(const TrainConfig& c) {
  const auto names = data::dataset_names();
  if (std::find(names.begin(), names.end(), c.data.data) == names.end())
    throw UsageError(
        fmt::format("--data: unknown dataset '{}'; valid: {}", c.data.data, fmt::join(names, ", ")));
  if (c.schedule == "multistep" && c.milestones.empty())
    throw UsageError("--schedule multistep needs --milestones, e.g. --milestones 100,150");
}

nlohmann::json to_json(const TrainConfig& c) {
  return {{"data", c.data.data},
          {"data_dir", c.data.data_dir},
          {"limit_test", c.data.limit_test},
          {"batch_size", c.data.batch_size},
          {"device", c.data.device},
          {"threads", c.data.threads},
          {"workers", c.data.workers},
          {"precision", c.data.precision},
          {"model", c.model},
          {"loss", c.loss},
          {"epochs", c.epochs},
          {"lr", c.lr},
          {"momentum", c.momentum},
          {"nesterov", c.nesterov},
          {"weight_decay", c.weight_decay},
          {"optimizer", c.optimizer},
          {"schedule", c.schedule},
          {"milestones", c.milestones},
          {"step_size", c.step_size},
          {"gamma", c.gamma},
          {"warmup", c.warmup},
          {"clip_grad_norm", c.clip_grad_norm},
          {"seed", c.seed},
          {"val_split", c.val_split},
          {"limit_train", c.limit_train},
          {"augment", c.augment},
          {"crop_padding", c.crop_padding},
          {"deterministic", c.deterministic},
          {"sync_bn", c.sync_bn},
          {"dist_timeout", c.dist_timeout}};
}

TrainConfig config_from_json(const nlohmann::json& j) {
  TrainConfig c;
  auto get = [&](const char* key, auto& field) {
    if (j.contains(key)) j.at(key).get_to(field);
  };
  get("data", c.data.data);
  get("data_dir", c.data.data_dir);
  get("limit_test", c.data.limit_test);
  get("batch_size", c.data.batch_size);
  get("device", c.data.device);
  get("threads", c.data.threads);
  get("workers", c.data.workers);
  get("precision", c.data.precision);
  get("model", c.model);
  get("loss", c.loss);
  get("epochs", c.epochs);
  get("lr", c.lr);
  get("momentum", c.momentum);
  get("nesterov", c.nesterov);
  get("weight_decay", c.weight_decay);
  get("optimizer", c.optimizer);
  get("schedule", c.schedule);
  get("milestones", c.milestones);
  get("step_size", c.step_size);
  get("gamma", c.gamma);
  get("warmup", c.warmup);
  get("clip_grad_norm", c.clip_grad_norm);
  get("seed", c.seed);
  get("val_split", c.val_split);
  get("limit_train", c.limit_train);
  get("augment", c.augment);
  get("crop_padding", c.crop_padding);
  get("deterministic", c.deterministic);
  get("sync_bn", c.sync_bn);
  get("dist_timeout", c.dist_timeout);
  return c;
}

}  // namespace kindling::app
