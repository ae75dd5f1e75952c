// nn/ learning-rate schedules against torch.optim.lr_scheduler (base lr 0.1 unless stated), and
// make_schedule's spec parsing and errors.
#include "nn/schedule.h"
#include "tests/test_util.h"

#include <doctest/doctest.h>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("step and multistep schedules") {
  StepSchedule step(0.1, 30, 0.1);
  CHECK(step.lr(0, 0) == doctest::Approx(0.1));
  CHECK(step.lr(29, 99) == doctest::Approx(0.1));
  CHECK(step.lr(30, 0) == doctest::Approx(0.01));
  CHECK(step.lr(90, 0) == doctest::Approx(1e-4));
  MultiStepSchedule multi(0.1, {100, 150}, 0.1);
  CHECK(multi.lr(99, 390) == doctest::Approx(0.1));
  CHECK(multi.lr(100, 0) == doctest::Approx(0.01));
  CHECK(multi.lr(149, 0) == doctest::Approx(0.01));
  CHECK(multi.lr(150, 0) == doctest::Approx(0.001));
  CHECK(multi.lr(199, 0) == doctest::Approx(0.001));
}

TEST_CASE("cosine schedule matches CosineAnnealingLR at epoch boundaries") {
  CosineSchedule cosine(0.1, 200, 390);
  CHECK(cosine.lr(0, 0) == doctest::Approx(0.1));
  CHECK(cosine.lr(50, 0) == doctest::Approx(0.0853553390593274));
  CHECK(cosine.lr(100, 0) == doctest::Approx(0.05));
  CHECK(cosine.lr(150, 0) == doctest::Approx(0.014644660940672632));
  CHECK(cosine.lr(200, 0) == doctest::Approx(0.0));
  CHECK(cosine.lr(250, 0) == doctest::Approx(0.0));
  // Within an epoch it moves smoothly between the epoch values.
  CHECK(cosine.lr(100, 195) < cosine.lr(100, 0));
  CHECK(cosine.lr(100, 195) > cosine.lr(101, 0));
  CHECK(CosineSchedule(0.1, 10, 1, 0.001).lr(10, 0) == doctest::Approx(0.001));
}

TEST_CASE("linear warm-up composes with other schedules") {
  auto warm = make_schedule("cosine:warmup=5,warmup_start=0.1", 0.1, 100, 10);
  const CosineSchedule cosine(0.1, 100, 10);
  CHECK(warm->lr(0, 0) == doctest::Approx(0.1 * 0.1));
  CHECK(warm->lr(2, 5) == doctest::Approx(cosine.lr(2, 5) * (0.1 + 0.9 * 2.5 / 5)));
  CHECK(warm->lr(5, 0) == doctest::Approx(cosine.lr(5, 0)));
  CHECK(warm->lr(60, 3) == doctest::Approx(cosine.lr(60, 3)));
  auto warm_steps = make_schedule("multistep:milestones=10/20,gamma=0.5,warmup=2,warmup_start=0", 0.2, 30, 4);
  CHECK(warm_steps->lr(0, 0) == doctest::Approx(0.0));
  CHECK(warm_steps->lr(1, 0) == doctest::Approx(0.1));
  CHECK(warm_steps->lr(15, 0) == doctest::Approx(0.1));
  CHECK(warm_steps->lr(25, 0) == doctest::Approx(0.05));
}

TEST_CASE("one-cycle schedule matches OneCycleLR") {
  OneCycleSchedule one_cycle(0.1, 10, 100);  // 1000 steps, pct_start 0.3, div 25, final div 1e4
  CHECK(one_cycle.lr(0, 0) == doctest::Approx(0.004));
  CHECK(one_cycle.lr(0, 1) == doctest::Approx(0.00400264950421679));
  CHECK(one_cycle.lr(1, 50) == doctest::Approx(0.05225216681225469));
  CHECK(one_cycle.lr(2, 99) == doctest::Approx(0.1));
  CHECK(one_cycle.lr(3, 0) == doctest::Approx(0.09999949645161448));
  CHECK(one_cycle.lr(5, 0) == doctest::Approx(0.08099881015401794));
  CHECK(one_cycle.lr(9, 99) == doctest::Approx(4e-7));
  auto parsed = make_schedule("onecycle:pct_start=0.3", 0.1, 10, 100);
  CHECK(parsed->lr(1, 50) == doctest::Approx(0.05225216681225469));
}

TEST_CASE("make_schedule parses specs and names bad ones") {
  CHECK(make_schedule("constant", 0.3, 10, 5)->lr(7, 2) == doctest::Approx(0.3));
  CHECK(make_schedule("step:size=3,gamma=0.5", 1.0, 10, 5)->lr(7, 0) == doctest::Approx(0.25));
  CHECK(make_schedule("multistep", 1.0, 100, 5)->lr(75, 0) == doctest::Approx(0.01));  // default 50/75
  CHECK(error_text([] { make_schedule("cosin", 0.1, 10, 5); }) ==
        "schedule 'cosin': unknown name 'cosin' (valid: constant, step, multistep, cosine, onecycle)");
  CHECK(error_text([] { make_schedule("step:gama=0.1", 0.1, 10, 5); }) ==
        "schedule 'step:gama=0.1': unknown key 'gama' for step");
  CHECK(error_text([] { make_schedule("step:size=x", 0.1, 10, 5); }) ==
        "schedule 'step:size=x': size=x is not a number");
  CHECK(error_text([] { make_schedule("onecycle:warmup=2", 0.1, 10, 5); }) ==
        "schedule 'onecycle:warmup=2': unknown key 'warmup' for onecycle");
}
