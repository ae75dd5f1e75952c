#include "nn/schedule.h"

#include "core/error.h"
#include "core/spec.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numbers>
#include <optional>

namespace kindling {

namespace {
void check_position(int64_t epoch, int64_t batch) {
  KINDLING_CHECK(epoch >= 0 && batch >= 0, ValueError, "schedule: epoch {} and batch {} must be non-negative",
                 epoch, batch);
}
double fractional_epoch(int64_t epoch, int64_t batch, int64_t steps_per_epoch) {
  return double(epoch) + double(batch) / double(steps_per_epoch);
}
// cos annealing from `start` (pct 0) to `end` (pct 1), PyTorch's _annealing_cos.
double anneal_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
}
}  // namespace

std::string ConstantSchedule::describe() const { return fmt::format("constant(lr={})", base_lr_); }

StepSchedule::StepSchedule(double base_lr, int64_t step_size, double gamma)
    : base_lr_(base_lr), step_size_(step_size), gamma_(gamma) {
  KINDLING_CHECK(step_size >= 1, ValueError, "step schedule: size must be >= 1, got {}", step_size);
}
double StepSchedule::lr(int64_t epoch, int64_t batch) const {
  check_position(epoch, batch);
  return base_lr_ * std::pow(gamma_, double(epoch / step_size_));
}
std::string StepSchedule::describe() const {
  return fmt::format("step(lr={}, size={}, gamma={})", base_lr_, step_size_, gamma_);
}

MultiStepSchedule::MultiStepSchedule(double base_lr, std::vector<int64_t> milestones, double gamma)
    : base_lr_(base_lr), milestones_(std::move(milestones)), gamma_(gamma) {
  KINDLING_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()), ValueError,
                 "multistep schedule: milestones must be increasing");
}
double MultiStepSchedule::lr(int64_t epoch, int64_t batch) const {
  check_position(epoch, batch);
  const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
  return base_lr_ * std::pow(gamma_, double(passed));
}
std::string MultiStepSchedule::describe() const {
  return fmt::format("multistep(lr={}, milestones=[{}], gamma={})", base_lr_, fmt::join(milestones_, ","),
                     gamma_);
}

CosineSchedule::CosineSchedule(double base_lr, int64_t epochs, int64_t steps_per_epoch, double min_lr)
    : base_lr_(base_lr), epochs_(epochs), steps_per_epoch_(steps_per_epoch), min_lr_(min_lr) {
  KINDLING_CHECK(epochs >= 1 && steps_per_epoch >= 1, ValueError,
                 "cosine schedule: epochs ({}) and steps per epoch ({}) must be >= 1", epochs,
                 steps_per_epoch);
}
double CosineSchedule::lr(int64_t epoch, int64_t batch) const {
  check_position(epoch, batch);
  const double progress = std::min(1.0, fractional_epoch(epoch, batch, steps_per_epoch_) / double(epochs_));
  return anneal_cos(base_lr_, min_lr_, progress);
}
std::string CosineSchedule::describe() const {
  return fmt::format("cosine(lr={}, epochs={}, min_lr={})", base_lr_, epochs_, min_lr_);
}

WarmupSchedule::WarmupSchedule(std::unique_ptr<Schedule> inner, double warmup_epochs, int64_t steps_per_epoch,
                               double start_factor)
    : inner_(std::move(inner)),
      warmup_epochs_(warmup_epochs),
      steps_per_epoch_(steps_per_epoch),
      start_factor_(start_factor) {
  KINDLING_CHECK(inner_ != nullptr, ValueError, "warm-up: no schedule to warm up");
  KINDLING_CHECK(warmup_epochs > 0 && steps_per_epoch >= 1, ValueError,
                 "warm-up: epochs ({}) must be > 0 and steps per epoch ({}) >= 1", warmup_epochs,
                 steps_per_epoch);
  KINDLING_CHECK(start_factor >= 0 && start_factor <= 1, ValueError,
                 "warm-up: warmup_start must be in [0, 1], got {}", start_factor);
}
double WarmupSchedule::lr(int64_t epoch, int64_t batch) const {
  const double progress = std::min(1.0, fractional_epoch(epoch, batch, steps_per_epoch_) / warmup_epochs_);
  return inner_->lr(epoch, batch) * (start_factor_ + (1.0 - start_factor_) * progress);
}
std::string WarmupSchedule::describe() const {
  return fmt::format("warmup(epochs={}, start={}) then {}", warmup_epochs_, start_factor_,
                     inner_->describe());
}

OneCycleSchedule::OneCycleSchedule(double max_lr, int64_t epochs, int64_t steps_per_epoch, double pct_start,
                                   double div_factor, double final_div_factor)
    : max_lr_(max_lr),
      steps_per_epoch_(steps_per_epoch),
      total_steps_(epochs * steps_per_epoch),
      pct_start_(pct_start),
      div_factor_(div_factor),
      final_div_factor_(final_div_factor) {
  KINDLING_CHECK(epochs >= 1 && steps_per_epoch >= 1, ValueError,
                 "onecycle schedule: epochs ({}) and steps per epoch ({}) must be >= 1", epochs,
                 steps_per_epoch);
  KINDLING_CHECK(pct_start > 0 && pct_start < 1, ValueError,
                 "onecycle schedule: pct_start must be in (0, 1), got {}", pct_start);
  KINDLING_CHECK(div_factor > 0 && final_div_factor > 0, ValueError,
                 "onecycle schedule: div_factor and final_div_factor must be > 0");
}
double OneCycleSchedule::lr(int64_t epoch, int64_t batch) const {
  check_position(epoch, batch);
  // As torch.optim.lr_scheduler.OneCycleLR: phase one ends at step pct_start*total - 1, phase two
  // at total - 1; steps past the end stay on phase two's curve clamped at its end.
  const double initial_lr = max_lr_ / div_factor_;
  const double min_lr = initial_lr / final_div_factor_;
  const double step = std::min(double(epoch * steps_per_epoch_ + batch), double(total_steps_ - 1));
  const double warm_end = pct_start_ * double(total_steps_) - 1.0;
  if (step <= warm_end) return anneal_cos(initial_lr, max_lr_, step / warm_end);
  return anneal_cos(max_lr_, min_lr, (step - warm_end) / (double(total_steps_ - 1) - warm_end));
}
std::string OneCycleSchedule::describe() const {
  return fmt::format("onecycle(max_lr={}, steps={}, pct_start={}, div_factor={}, final_div_factor={})",
                     max_lr_, total_steps_, pct_start_, div_factor_, final_div_factor_);
}

// ---- make_schedule ----
namespace {
double parse_number(const std::string& spec, const std::string& key, const std::string& text) {
  const std::optional<double> value = parse_finite(text);
  KINDLING_CHECK(value.has_value(), ValueError, "schedule '{}': {}={} is not a number", spec, key, text);
  return *value;
}
int64_t parse_count(const std::string& spec, const std::string& key, const std::string& text) {
  const double value = parse_number(spec, key, text);
  KINDLING_CHECK(value >= 0 && value == std::floor(value), ValueError,
                 "schedule '{}': {}={} must be a non-negative whole number", spec, key, text);
  return int64_t(value);
}
}  // namespace

std::unique_ptr<Schedule> make_schedule(const std::string& spec, double base_lr, int64_t epochs,
                                        int64_t steps_per_epoch) {
  const Spec parsed = parse_spec(spec, fmt::format("schedule '{}'", spec));
  const std::string& name = parsed.name;
  std::map<std::string, std::string> options(parsed.options.begin(), parsed.options.end());
  // Each lookup removes the key, so whatever is left at the end was not understood.
  auto take = [&](const std::string& key, const std::string& fallback) {
    auto it = options.find(key);
    if (it == options.end()) return fallback;
    std::string value = it->second;
    options.erase(it);
    return value;
  };
  auto number = [&](const std::string& key, const std::string& fallback) {
    return parse_number(spec, key, take(key, fallback));
  };

  std::unique_ptr<Schedule> schedule;
  if (name == "constant") {
    schedule = std::make_unique<ConstantSchedule>(base_lr);
  } else if (name == "step") {
    const int64_t size = parse_count(spec, "size", take("size", "30"));
    schedule = std::make_unique<StepSchedule>(base_lr, size, number("gamma", "0.1"));
  } else if (name == "multistep") {
    std::vector<int64_t> milestones;
    const std::string default_milestones = fmt::format("{}/{}", epochs / 2, epochs * 3 / 4);
    for (const std::string& m : split_list(take("milestones", default_milestones)))
      milestones.push_back(parse_count(spec, "milestones", m));
    schedule = std::make_unique<MultiStepSchedule>(base_lr, milestones, number("gamma", "0.1"));
  } else if (name == "cosine") {
    schedule = std::make_unique<CosineSchedule>(base_lr, epochs, steps_per_epoch, number("min_lr", "0"));
  } else if (name == "onecycle") {
    const double pct_start = number("pct_start", "0.3");
    const double div_factor = number("div_factor", "25");
    schedule = std::make_unique<OneCycleSchedule>(base_lr, epochs, steps_per_epoch, pct_start, div_factor,
                                                  number("final_div_factor", "1e4"));
  } else {
    throw ValueError(
        fmt::format("schedule '{}': unknown name '{}' (valid: constant, step, multistep, "
                    "cosine, onecycle)",
                    spec, name));
  }
  if (name != "onecycle") {
    const double warmup = number("warmup", "0");
    const double warmup_start = number("warmup_start", "0.1");
    if (warmup > 0)
      schedule = std::make_unique<WarmupSchedule>(std::move(schedule), warmup, steps_per_epoch, warmup_start);
  }
  KINDLING_CHECK(options.empty(), ValueError, "schedule '{}': unknown key '{}' for {}", spec,
                 options.begin()->first, name);
  return schedule;
}

}  // namespace kindling
