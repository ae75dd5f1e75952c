// The loss spec parser, the registry and the resolution of hyperparameters into LossDesc.
#include "test_losses_common.h"

#include "core/error.h"
#include "losses/registry.h"

#include <doctest/doctest.h>

#include <cmath>

using namespace kindling;
using namespace kindling::test;

TEST_CASE("the registry lists the twelve losses in LossKind order with sources and formulas") {
  const std::vector<LossInfo>& registry = loss_registry();
  REQUIRE(registry.size() == size_t(kNumLossKinds));
  for (int k = 0; k < kNumLossKinds; ++k) {
    const LossInfo& info = registry[size_t(k)];
    CHECK(int(info.kind) == k);
    CHECK(std::string(info.name) == loss_kind_name(info.kind));
    CHECK(std::string(info.formula).size() > 10);
    CHECK(std::string(info.source).size() > 5);
    CHECK(&loss_info(info.kind) == &info);
  }
  CHECK(loss_names() ==
        "ce, label_smoothing, lace, expectation, ce_expectation_mix, min_ent, mix_ent, "
        "squentropy, square, ngl, focal, poly1");
  const std::string help = losses_help();
  for (const LossInfo& info : registry)
    CHECK(help.find(std::string("\n") + info.name + "\n") != std::string::npos);
  CHECK(help.find("gamma = 2  (number; focusing exponent") != std::string::npos);
  CHECK(help.find("F = 0/0.5  (numbers separated by /") != std::string::npos);
  CHECK(help.find("decision: softmax probabilities") != std::string::npos);
  CHECK(help.find("a large M scales the gradient up") != std::string::npos);
  CHECK(help.find("arXiv 2404.12948") != std::string::npos);
}

TEST_CASE("spec parsing: defaults, explicit values, bases, lists, auto, and the round trip") {
  CHECK(Loss("ce").spec() == "ce");
  CHECK(Loss("focal").spec() == "focal:gamma=2,alpha=1");
  CHECK(Loss(" focal : alpha = 0.25 ").spec() == "focal:gamma=2,alpha=0.25");
  CHECK(Loss("ce_expectation_mix").spec() == "ce_expectation_mix:F=0/0.5,h=1.9");
  CHECK(Loss("ce_expectation_mix:F=0/.1/.2,h=1").spec() == "ce_expectation_mix:F=0/0.1/0.2,h=1");
  CHECK(Loss("square").spec() == "square:k=auto,M=auto");
  CHECK(Loss("square:M=15").spec() == "square:k=auto,M=15");
  CHECK(Loss("min_ent").spec() == "min_ent:w1=0.839,b1=2.02,w2=0.308,b2=10.73");
  CHECK(Loss("poly1:eps=1,reduction=sum").spec() == "poly1:eps=1,reduction=sum");
  CHECK(Loss("ngl:reduction=none").reduction() == Reduction::none);
  CHECK(Loss("ce:").spec() == "ce");
  CHECK(std::string(Loss("lace").name()) == "lace");
  CHECK(Loss("mix_ent").kind() == LossKind::mix_ent);
  for (const std::string& spec : all_specs()) {
    const Loss loss(spec);
    CHECK(Loss(loss.spec()).spec() == loss.spec());
    const LossDesc a = loss.desc(10), b = Loss(loss.spec()).desc(10);
    for (int i = 0; i < kMaxLossParams; ++i) CHECK(a.params[i] == b.params[i]);
  }
}

TEST_CASE("desc: bases fold into coefficients, square picks its defaults by class count") {
  const LossDesc min_ent = Loss("min_ent").desc(26);
  CHECK(min_ent.kind == LossKind::min_ent);
  CHECK(min_ent.params[0] == doctest::Approx(1.193).epsilon(1e-3));
  CHECK(min_ent.params[1] == doctest::Approx(0.130).epsilon(3e-3));
  const LossDesc mix_ent = Loss("mix_ent").desc(26);
  CHECK(mix_ent.params[0] == doctest::Approx(0.283).epsilon(1e-3));
  CHECK(mix_ent.params[1] == doctest::Approx(0.374).epsilon(1e-3));
  CHECK(mix_ent.params[2] == doctest::Approx(13.8155).epsilon(1e-5));  // K for d = 1e-6
  CHECK(mix_ent.params[3] == doctest::Approx(1e-6));                   // ln(1 + d)
  const LossDesc natural = Loss("min_ent:w1=1,w2=0.1,b1=e,b2=e").desc(10);
  CHECK(natural.params[0] == doctest::Approx(1.0));
  CHECK(natural.params[1] == doctest::Approx(0.1));

  auto square_at = [](const std::string& spec, int64_t C) {
    const LossDesc desc = Loss(spec).desc(C);
    return std::pair<float, float>{desc.params[0], desc.params[1]};
  };
  CHECK(square_at("square", 10) == std::pair<float, float>{1, 1});
  CHECK(square_at("square", 41) == std::pair<float, float>{1, 1});
  CHECK(square_at("square", 42) == std::pair<float, float>{1, 15});
  CHECK(square_at("square", 999) == std::pair<float, float>{1, 15});
  CHECK(square_at("square", 1000) == std::pair<float, float>{15, 30});
  CHECK(square_at("square:k=2", 1000) == std::pair<float, float>{2, 30});
  CHECK(square_at("square:M=3", 5) == std::pair<float, float>{1, 3});

  CHECK(Loss("label_smoothing").desc(10).params[0] == doctest::Approx(0.1));
  CHECK(Loss("focal").desc(10).params[0] == 2.0f);
  CHECK(Loss("focal").desc(10).params[1] == 1.0f);
  CHECK(Loss("poly1").desc(10).params[0] == 2.0f);
}

TEST_CASE("spec errors name the loss, the key or the value, and list what is valid") {
  CHECK_THROWS_WITH_AS(Loss("cee"),
                       "unknown loss 'cee'; valid losses: ce, label_smoothing, lace, expectation, "
                       "ce_expectation_mix, min_ent, mix_ent, squentropy, square, ngl, focal, poly1",
                       ValueError);
  CHECK_THROWS_WITH_AS(Loss(""), doctest::Contains("unknown loss ''; valid losses: ce,"), ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gama=2"),
                       "loss focal has no hyperparameter 'gama'; valid keys: gamma, alpha, reduction",
                       ValueError);
  CHECK_THROWS_WITH_AS(Loss("ce:eps=0.1"), "loss ce has no hyperparameter 'eps'; valid keys: reduction",
                       ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gamma=abc"), "loss focal: gamma must be a number, got 'abc'", ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gamma=2x"), "loss focal: gamma must be a number, got '2x'", ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gamma="), "loss focal: gamma must be a number, got ''", ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gamma=-1"), "loss focal: gamma must be >= 0, got -1", ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:alpha=0"), "loss focal: alpha must be > 0, got 0", ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gamma=inf"), "loss focal: gamma must be a number, got 'inf'", ValueError);
  CHECK_THROWS_WITH_AS(Loss("min_ent:b1=1"), "loss min_ent: b1 must be > 0 and != 1, got 1", ValueError);
  CHECK_THROWS_WITH_AS(Loss("min_ent:b2=0"), "loss min_ent: b2 must be > 0 and != 1, got 0", ValueError);
  CHECK_THROWS_WITH_AS(Loss("min_ent:b2=f"), "loss min_ent: b2 must be a number or e, got 'f'", ValueError);
  CHECK_THROWS_WITH_AS(Loss("ce_expectation_mix:F=0/0.7"),
                       "loss ce_expectation_mix: F must be >= 0 and <= 0.5, got 0.7", ValueError);
  CHECK_THROWS_WITH_AS(Loss("ce_expectation_mix:F=0//0.5"),
                       "loss ce_expectation_mix: F must be a number, got ''", ValueError);
  CHECK_THROWS_WITH_AS(Loss("label_smoothing:eps=1.5"),
                       "loss label_smoothing: eps must be >= 0 and <= 1, got 1.5", ValueError);
  CHECK_THROWS_WITH_AS(Loss("mix_ent:d=0"), "loss mix_ent: d must be > 0 and <= 1, got 0", ValueError);
  CHECK_THROWS_WITH_AS(Loss("square:M=abc"), "loss square: M must be a number or auto, got 'abc'",
                       ValueError);
  CHECK_THROWS_WITH_AS(Loss("square:k=0"), "loss square: k must be > 0, got 0", ValueError);
  CHECK_THROWS_WITH_AS(Loss("poly1:eps=-2"), "loss poly1: eps must be >= -1, got -2", ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gamma"),
                       "loss focal: expected key=value, got 'gamma' (keys: gamma, alpha, reduction)",
                       ValueError);
  CHECK_THROWS_WITH_AS(Loss("focal:gamma=1,gamma=2"), "loss focal: gamma is given twice", ValueError);
  CHECK_THROWS_WITH_AS(Loss("ce:reduction=avg"), "loss ce: reduction must be mean, sum or none, got 'avg'",
                       ValueError);
}

TEST_CASE("mix_weights: the schedule formula at its edges") {
  // One fraction: the schedule never moves.
  CHECK(mix_weights({0.25}, 1.0, 100, 10) == std::pair<double, double>{1.0, 2.0});
  // Progress never set: F_0.
  CHECK(mix_weights({0.0, 0.5}, 1.9, 500, 0) == std::pair<double, double>{1.0, 1.0});
  // Past the end: the last fraction.
  CHECK(mix_weights({0.0, 0.5}, 1.0, 500, 10) == std::pair<double, double>{0.0, 1.0});
  // h large enough that the first part covers all epochs: F_0 throughout.
  CHECK(mix_weights({0.0, 0.5}, 2.0, 9, 10) == std::pair<double, double>{1.0, 1.0});
  // h = 0: no first part, the rest split over F_1 .. F_{K-1}.
  CHECK(mix_weights({0.0, 0.1, 0.5}, 0.0, 0, 10).second == doctest::Approx(1.25));
  CHECK(mix_weights({0.0, 0.1, 0.5}, 0.0, 5, 10) == std::pair<double, double>{0.0, 1.0});
  CHECK_THROWS_AS(mix_weights({}, 1.0, 0, 10), ValueError);
}
