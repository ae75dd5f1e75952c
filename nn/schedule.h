// Learning-rate schedules as pure functions of (epoch, batch): resuming from a checkpoint needs only
// the epoch and step it stores, never a scheduler's internal state. epoch counts from 0 and batch
// from 0 within the epoch; t = epoch + batch / steps_per_epoch is the fractional epoch.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kindling {

class Schedule {
 public:
  virtual ~Schedule() = default;
  // The learning rate for the batch `batch` of epoch `epoch`. Requires epoch >= 0, batch >= 0.
  virtual double lr(int64_t epoch, int64_t batch) const = 0;
  // "cosine(base_lr=0.1, epochs=200, min_lr=0)", for logs.
  virtual std::string describe() const = 0;
};

// base_lr throughout.
class ConstantSchedule final : public Schedule {
 public:
  explicit ConstantSchedule(double base_lr) : base_lr_(base_lr) {}
  double lr(int64_t, int64_t) const override { return base_lr_; }
  std::string describe() const override;

 private:
  double base_lr_;
};

// PyTorch StepLR stepped per epoch: base_lr * gamma^floor(epoch / step_size).
class StepSchedule final : public Schedule {
 public:
  StepSchedule(double base_lr, int64_t step_size, double gamma);
  double lr(int64_t epoch, int64_t batch) const override;
  std::string describe() const override;

 private:
  double base_lr_;
  int64_t step_size_;
  double gamma_;
};

// PyTorch MultiStepLR stepped per epoch: base_lr * gamma^(number of milestones <= epoch).
class MultiStepSchedule final : public Schedule {
 public:
  MultiStepSchedule(double base_lr, std::vector<int64_t> milestones, double gamma);
  double lr(int64_t epoch, int64_t batch) const override;
  std::string describe() const override;

 private:
  double base_lr_;
  std::vector<int64_t> milestones_;
  double gamma_;
};

// Cosine annealing from base_lr to min_lr over `epochs`, evaluated at the fractional epoch t:
// min_lr + (base_lr - min_lr) * (1 + cos(pi * t / epochs)) / 2, and min_lr after the end. At
// batch 0 it equals PyTorch's CosineAnnealingLR(T_max = epochs) stepped per epoch.
class CosineSchedule final : public Schedule {
 public:
  CosineSchedule(double base_lr, int64_t epochs, int64_t steps_per_epoch, double min_lr = 0.0);
  double lr(int64_t epoch, int64_t batch) const override;
  std::string describe() const override;

 private:
  double base_lr_;
  int64_t epochs_, steps_per_epoch_;
  double min_lr_;
};

// Linear warm-up in front of any schedule: the inner schedule's rate times
// start_factor + (1 - start_factor) * min(1, t / warmup_epochs), so it composes with every other
// schedule (warm-up then cosine, warm-up then steps).
class WarmupSchedule final : public Schedule {
 public:
  WarmupSchedule(std::unique_ptr<Schedule> inner, double warmup_epochs, int64_t steps_per_epoch,
                 double start_factor = 0.1);
  double lr(int64_t epoch, int64_t batch) const override;
  std::string describe() const override;

 private:
  std::unique_ptr<Schedule> inner_;
  double warmup_epochs_;
  int64_t steps_per_epoch_;
  double start_factor_;
};

// PyTorch OneCycleLR (two phases, cosine annealing), stepped per batch: from max_lr / div_factor up
// to max_lr over the first pct_start of the epochs * steps_per_epoch steps, then down to
// max_lr / div_factor / final_div_factor. Only the learning rate cycles, not the momentum.
class OneCycleSchedule final : public Schedule {
 public:
  OneCycleSchedule(double max_lr, int64_t epochs, int64_t steps_per_epoch, double pct_start = 0.3,
                   double div_factor = 25.0, double final_div_factor = 1e4);
  double lr(int64_t epoch, int64_t batch) const override;
  std::string describe() const override;

 private:
  double max_lr_;
  int64_t steps_per_epoch_, total_steps_;
  double pct_start_, div_factor_, final_div_factor_;
};

// Builds a schedule from a spec `name[:key=value,...]`, the syntax the losses use:
//   constant | step:size=30,gamma=0.1 | multistep:milestones=100/150,gamma=0.1 |
//   cosine:min_lr=0 | onecycle:pct_start=0.3,div_factor=25,final_div_factor=1e4
// and, for every name but onecycle, warmup=<epochs>,warmup_start=<factor> to add a linear warm-up.
// base_lr is onecycle's max_lr. Throws ValueError naming the bad name, key or value.
std::unique_ptr<Schedule> make_schedule(const std::string& spec, double base_lr, int64_t epochs,
                                        int64_t steps_per_epoch);

}  // namespace kindling
