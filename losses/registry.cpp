// The registry's contents: docs/losses.md in data form.
#include "losses/registry.h"

#include "core/error.h"

#include <cmath>
#include <limits>

namespace kindling {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<LossInfo> make_registry() {
  return {
      {"ce", LossKind::ce, "l = -ln p_y;  dl/dz = p - e", {}, "cross entropy", ""},
      {"label_smoothing",
       LossKind::label_smoothing,
       "l = -sum_j t_j ln p_j, t = (1 - eps) e + eps/C;  dl/dz = p - t",
       {{"eps", ParamType::number, "0.1", 0, 1, false, "smoothing mass, spread over all C classes"}},
       "Szegedy et al. 2016 (PyTorch's convention: the true class gets eps/C too)",
       ""},
      {"lace",
       LossKind::lace,
       "l = -(1 - q) ln q = CE + q ln q;  w(q) = (1 - q) - q ln q",
       {},
       "Shim 2025, arXiv 2507.10574 (linearly adaptive cross entropy)",
       "decision: coefficient 1 on q ln q (the paper's exact text was not available). Easy rows "
       "are down-weighted, like a mild focal loss."},
      {"expectation",
       LossKind::expectation,
       "l = 1 - q;  w(q) = q",
       {},
       "Battash, Wolf, Hazan 2021, arXiv 2109.05635",
       "decision: the value is the soft 1 - mean q, consistent with the gradient (the authors "
       "report the hard 0-1 error; see accuracy for that). Trains poorly alone from the start."},
      {"ce_expectation_mix",
       LossKind::ce_expectation_mix,
       "L = alpha_k CE + beta_k (1 - q);  w(q) = alpha_k + beta_k q",
       {{"F", ParamType::number_list, "0/0.5", 0, 0.5, false,
         "fractions F_0/F_1/...: alpha = 1, beta = 1/(1 - 2F), or alpha = 0, beta = 1 at F = 0.5"},
        {"h", ParamType::number, "1.9", 0, kInf, false,
         "the first floor(total*h/K) epochs use F_0; the rest are split evenly over F_1.."}},
       "Battash, Wolf, Hazan 2021 (the authors' CIFAR-100 scripts)",
       "presets: F=0 (CE + EL throughout); F=0/0.5,h=1.9 (the default: CE + EL, then pure EL for "
       "the last 12 of 240 epochs); F=0/0.1/0.2/0.3/0.4/0.5,h=1 (40-epoch blocks). The weights "
       "follow the training progress (epoch, total epochs)."},
      {"min_ent",
       LossKind::min_ent,
       "L = c1 CE + c2 H(p), c_i = w_i / ln b_i;  "
       "dl/dz = c1 (p - e) - c2 p (ln p + H)",
       {{"w1", ParamType::number, "0.839", 0, kInf, false, "weight of CE"},
        {"b1", ParamType::base, "2.02", 0, kInf, true, "log base of CE (only rescales it)"},
        {"w2", ParamType::number, "0.308", 0, kInf, false, "weight of the entropy"},
        {"b2", ParamType::base, "10.73", 0, kInf, true, "log base of the entropy"}},
       "Ibraheem 2025, arXiv 2501.13709 (released EMNIST-Letters setting)",
       "effective c1 ~ 1.193, c2 ~ 0.130 by default."},
      {"mix_ent",
       LossKind::mix_ent,
       "L = c1 CE(e, p) + c2 CE(p, e + d) = c1 CE + c2 (K (1 - q) - ln(1 + d)), K = ln((1 + d)/d)",
       {{"w1", ParamType::number, "0.717", 0, kInf, false, "weight of CE"},
        {"b1", ParamType::base, "12.58", 0, kInf, true, "log base of CE"},
        {"w2", ParamType::number, "0.943", 0, kInf, false, "weight of the swapped CE"},
        {"b2", ParamType::base, "12.45", 0, kInf, true, "log base of the swapped CE"},
        {"d", ParamType::number, "1e-6", 0, 1, true, "floor added to the one-hot target"}},
       "Ibraheem 2025, arXiv 2501.13709 (released EMNIST-Letters setting)",
       "decision: additive floor d on the target (the authors' loss code is unpublished). "
       "Effective c1 ~ 0.283, c2 ~ 0.374 by default."},
      {"squentropy",
       LossKind::squentropy,
       "l = -ln p_y + (1/(C - 1)) sum_{j != y} z_j^2  (on raw logits)",
       {},
       "Hui, Belkin, Wright, ICML 2023",
       "same optimiser settings as CE; claimed: accuracy at least CE's, better calibration."},
      {"square",
       LossKind::square,
       "l = (1/C) [k (z_y - M)^2 + sum_{j != y} z_j^2]  (on raw logits)",
       {{"k", ParamType::number_or_auto, "auto", 0, kInf, true,
         "weight of the true class: auto = 1 below 1000 classes, 15 from 1000"},
        {"M", ParamType::number_or_auto, "auto", -kInf, kInf, false,
         "target of the true logit: auto = 1 below 42 classes, 15 up to 999, 30 from 1000"}},
       "Hui & Belkin, ICLR 2021 (rescaled square loss)",
       "a large M scales the gradient up: lower the learning rate accordingly."},
      {"ngl",
       LossKind::ngl,
       "L = mean_{n,j} [exp(2.4092 - p_nj (1 + e_nj)) - cos(cos(sin p_nj))]  (mean over N*C)",
       {},
       "Akhmedova & Koerber 2024, arXiv 2404.12948 (Next Generation Loss, found by genetic "
       "programming)",
       "decision: softmax probabilities as in the authors' PyTorch code (no extra sigmoid). The "
       "minimum is not at p_y = 1 (p_y ~ 0.391 at C = 10): confidences stay low. Gradients are "
       "small (|g_CE|/|g_NGL| ~ 12 at C = 10, ~ 1000 at C = 100): scale the SGD learning rate up "
       "or use Adam."},
      {"focal",
       LossKind::focal,
       "l = -alpha (1 - q)^gamma ln q",
       {{"gamma", ParamType::number, "2", 0, kInf, false, "focusing exponent (0 gives alpha * CE)"},
        {"alpha", ParamType::number, "1", 0, kInf, true, "scale (detection uses 0.25)"}},
       "Lin et al. 2017 (softmax form)",
       ""},
      {"poly1",
       LossKind::poly1,
       "l = -ln q + eps (1 - q);  w(q) = 1 + eps q",
       {{"eps", ParamType::number, "2", -1, kInf, false, "weight of the first polynomial term"}},
       "Leng et al., ICLR 2022 (PolyLoss, Poly-1)",
       "eps = 2 is the paper's ImageNet choice."},
  };
}

std::string type_text(const HyperParam& param) {
  switch (param.type) {
    case ParamType::base:
      return "log base (number or e)";
    case ParamType::number_list:
      return "numbers separated by /";
    case ParamType::number_or_auto:
      return "number or auto";
    case ParamType::number:
      break;
  }
  return "number";
}

}  // namespace

const std::vector<LossInfo>& loss_registry() {
  static const std::vector<LossInfo> registry = make_registry();
  return registry;
}

std::string loss_names() {
  std::string names;
  for (const LossInfo& info : loss_registry()) {
    if (!names.empty()) names += ", ";
    names += info.name;
  }
  return names;
}

const LossInfo& find_loss(const std::string& name) {
  for (const LossInfo& info : loss_registry())
    if (name == info.name) return info;
  throw ValueError(fmt::format("unknown loss '{}'; valid losses: {}", name, loss_names()));
}

const LossInfo& loss_info(LossKind kind) {
  for (const LossInfo& info : loss_registry())
    if (info.kind == kind) return info;
  throw ValueError(fmt::format("no registry entry for loss kind {}", static_cast<int>(kind)));
}

std::string losses_help() {
  std::string text =
      "Losses: written name[:key=value,...], e.g. focal:gamma=2,alpha=1 or "
      "ce_expectation_mix:F=0/0.5,h=1.9.\n"
      "Notation: z logits, p = softmax(z), q = p_y, e = one-hot(y), C classes; mean over the rows "
      "unless noted.\nEvery loss also takes reduction=mean|sum|none (default mean).\n";
  for (const LossInfo& info : loss_registry()) {
    text += fmt::format("\n{}\n  {}\n", info.name, info.formula);
    for (const HyperParam& param : info.params)
      text +=
          fmt::format("  {} = {}  ({}; {})\n", param.key, param.default_text, type_text(param), param.help);
    text += fmt::format("  source: {}\n", info.source);
    if (info.notes[0] != '\0') text += fmt::format("  note: {}\n", info.notes);
  }
  return text;
}

}  // namespace kindling
