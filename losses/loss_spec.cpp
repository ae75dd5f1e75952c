// The Loss's spec: parsing `name[:key=value,...]` against the registry (core/spec.h has the
// syntax), the spec written back, the mix schedule, and the kernels' LossDesc for a class count.
#include "losses/loss.h"

#include "core/error.h"
#include "core/spec.h"
#include "losses/registry.h"

#include <cmath>
#include <limits>
#include <optional>

namespace kindling {
namespace {

constexpr double kAuto = std::numeric_limits<double>::quiet_NaN();

std::string valid_keys(const LossInfo& info) {
  std::string keys;
  for (const HyperParam& param : info.params) keys += std::string(param.key) + ", ";
  return keys + "reduction";
}

std::string range_text(const HyperParam& param) {
  std::string text = param.min_open ? fmt::format("> {}", param.min) : fmt::format(">= {}", param.min);
  if (std::isinf(param.min)) text = "";
  if (!std::isinf(param.max)) text += fmt::format("{}<= {}", text.empty() ? "" : " and ", param.max);
  if (param.type == ParamType::base) text += " and != 1";
  return text;
}

// One number of `param` from its text; throws ValueError naming the loss, key and text.
double parse_number(const LossInfo& info, const HyperParam& param, const std::string& text) {
  if (param.type == ParamType::number_or_auto && text == "auto") return kAuto;
  double value = 0;
  if (param.type == ParamType::base && text == "e") {
    value = std::exp(1.0);
  } else {
    const std::optional<double> parsed = parse_finite(text);
    value = parsed.value_or(0.0);
    KINDLING_CHECK(parsed.has_value(), ValueError, "loss {}: {} must be a {}, got '{}'", info.name, param.key,
                   param.type == ParamType::base             ? "number or e"
                   : param.type == ParamType::number_or_auto ? "number or auto"
                                                             : "number",
                   text);
  }
  const bool in_range = (param.min_open ? value > param.min : value >= param.min) && value <= param.max &&
                        !(param.type == ParamType::base && value == 1.0);
  KINDLING_CHECK(in_range, ValueError, "loss {}: {} must be {}, got {}", info.name, param.key,
                 range_text(param), text);
  return value;
}

std::vector<double> parse_value(const LossInfo& info, const HyperParam& param, const std::string& text) {
  if (param.type != ParamType::number_list) return {parse_number(info, param, text)};
  std::vector<double> values;
  for (const std::string& item : split_list(text)) values.push_back(parse_number(info, param, item));
  return values;
}

Reduction parse_reduction(const LossInfo& info, const std::string& text) {
  if (text == "mean") return Reduction::mean;
  if (text == "sum") return Reduction::sum;
  if (text == "none") return Reduction::none;
  throw ValueError(fmt::format("loss {}: reduction must be mean, sum or none, got '{}'", info.name, text));
}

const char* reduction_name(Reduction reduction) {
  switch (reduction) {
    case Reduction::sum:
      return "sum";
    case Reduction::none:
      return "none";
    case Reduction::mean:
      break;
  }
  return "mean";
}

}  // namespace

Loss::Loss(const std::string& spec) {
  const LossInfo& info = find_loss(spec_name(spec));
  kind_ = info.kind;
  for (const HyperParam& param : info.params)
    values_.emplace_back(param.key, parse_value(info, param, param.default_text));
  const Spec parsed =
      parse_spec(spec, fmt::format("loss {}", info.name), fmt::format(" (keys: {})", valid_keys(info)));
  for (const auto& [key, text] : parsed.options) {
    if (key == "reduction") {
      reduction_ = parse_reduction(info, text);
      continue;
    }
    size_t index = 0;
    while (index < info.params.size() && key != info.params[index].key) ++index;
    KINDLING_CHECK(index < info.params.size(), ValueError,
                   "loss {} has no hyperparameter '{}'; valid keys: {}", info.name, key, valid_keys(info));
    values_[index].second = parse_value(info, info.params[index], text);
  }
}

const char* Loss::name() const { return loss_kind_name(kind_); }

std::string Loss::spec() const {
  std::string text = name();
  char separator = ':';
  for (const auto& [key, values] : values_) {
    std::string value_text;
    for (double value : values) {
      if (!value_text.empty()) value_text += '/';
      value_text += std::isnan(value) ? std::string("auto") : fmt::format("{}", value);
    }
    text += fmt::format("{}{}={}", separator, key, value_text);
    separator = ',';
  }
  if (reduction_ != Reduction::mean)
    text += fmt::format("{}reduction={}", separator, reduction_name(reduction_));
  return text;
}

double Loss::number(const char* key) const {
  for (const auto& [name, values] : values_)
    if (name == key) return values.at(0);
  throw ValueError(fmt::format("loss {} has no hyperparameter '{}'", this->name(), key));
}

void Loss::set_progress(int64_t epoch, int64_t total_epochs) {
  KINDLING_CHECK(epoch >= 0 && total_epochs >= 1, ValueError,
                 "loss {}: set_progress needs epoch >= 0 and total_epochs >= 1, got {} of {}", name(), epoch,
                 total_epochs);
  epoch_ = epoch;
  total_epochs_ = total_epochs;
}

std::pair<double, double> mix_weights(const std::vector<double>& F, double h, int64_t epoch,
                                      int64_t total_epochs) {
  KINDLING_CHECK(!F.empty(), ValueError, "ce_expectation_mix: F needs at least one fraction");
  const int64_t K = int64_t(F.size());
  int64_t k = 0;
  if (K > 1 && total_epochs > 0) {
    // The 1e-9 keeps products such as 240 * 0.3 that land a hair below an integer on it.
    const int64_t first_part = int64_t(std::floor(double(total_epochs) * h / double(K) + 1e-9));
    if (epoch >= first_part && first_part < total_epochs)
      k = std::min(K - 1, 1 + (epoch - first_part) * (K - 1) / (total_epochs - first_part));
  }
  if (F[size_t(k)] >= 0.5) return {0.0, 1.0};
  return {1.0, 1.0 / (1.0 - 2.0 * F[size_t(k)])};
}

LossDesc Loss::desc(int64_t num_classes) const {
  LossDesc desc;
  desc.kind = kind_;
  desc.reduction = reduction_;
  float* params = desc.params;
  switch (kind_) {
    case LossKind::label_smoothing:
      params[0] = float(number("eps"));
      break;
    case LossKind::ce_expectation_mix: {
      const auto [alpha, beta] = mix_weights(values_.at(0).second, number("h"), epoch_, total_epochs_);
      params[0] = float(alpha);
      params[1] = float(beta);
      break;
    }
    case LossKind::min_ent:
    case LossKind::mix_ent:
      params[0] = float(number("w1") / std::log(number("b1")));
      params[1] = float(number("w2") / std::log(number("b2")));
      if (kind_ == LossKind::mix_ent) {
        params[2] = float(std::log1p(1.0 / number("d")));  // K = ln((1 + d) / d)
        params[3] = float(std::log1p(number("d")));
      }
      break;
    case LossKind::square: {
      const double k = number("k"), M = number("M");
      params[0] = float(std::isnan(k) ? (num_classes >= 1000 ? 15.0 : 1.0) : k);
      params[1] = float(!std::isnan(M) ? M : num_classes < 42 ? 1.0 : num_classes < 1000 ? 15.0 : 30.0);
      break;
    }
    case LossKind::focal:
      params[0] = float(number("gamma"));
      params[1] = float(number("alpha"));
      break;
    case LossKind::poly1:
      params[0] = float(number("eps"));
      break;
    case LossKind::ce:
    case LossKind::lace:
    case LossKind::expectation:
    case LossKind::squentropy:
    case LossKind::ngl:
      break;
  }
  return desc;
}

}  // namespace kindling
