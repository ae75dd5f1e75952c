// The Loss front door: spec parsing against the registry, the mix schedule, input checks, and the
// fused forward that records a scale-the-saved-gradient backward.
#include "losses/loss.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "losses/loss_checks.h"
#include "losses/registry.h"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace kindling {
namespace {

constexpr double kAuto = std::numeric_limits<double>::quiet_NaN();

std::string trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(trim(text.substr(start, end - start)));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

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
    char* end = nullptr;
    value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
    KINDLING_CHECK(!text.empty() && end == text.c_str() + text.size() && std::isfinite(value),
                   ValueError, "loss {}: {} must be a {}, got '{}'", info.name, param.key,
                   param.type == ParamType::base ? "number or e"
                   : param.type == ParamType::number_or_auto ? "number or auto" : "number",
                   text);
  }
  const bool in_range = (param.min_open ? value > param.min : value >= param.min) &&
                        value <= param.max && !(param.type == ParamType::base && value == 1.0);
  KINDLING_CHECK(in_range, ValueError, "loss {}: {} must be {}, got {}", info.name, param.key,
                 range_text(param), text);
  return value;
}

std::vector<double> parse_value(const LossInfo& info, const HyperParam& param,
                                const std::string& text) {
  if (param.type != ParamType::number_list) return {parse_number(info, param, text)};
  std::vector<double> values;
  for (const std::string& item : split(text, '/')) values.push_back(parse_number(info, param, item));
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
    case Reduction::sum: return "sum";
    case Reduction::none: return "none";
    case Reduction::mean: break;
  }
  return "mean";
}

// "focalLossBackward", ...: built once, not per call.
const char* backward_name(LossKind kind) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (int k = 0; k < kNumLossKinds; ++k)
      all.push_back(std::string(loss_kind_name(LossKind(k))) + "LossBackward");
    return all;
  }();
  return names[size_t(kind)].c_str();
}

}  // namespace

Loss::Loss(const std::string& spec) {
  const size_t colon = spec.find(':');
  const LossInfo& info = find_loss(trim(spec.substr(0, colon)));
  kind_ = info.kind;
  for (const HyperParam& param : info.params)
    values_.emplace_back(param.key, parse_value(info, param, param.default_text));
  if (colon == std::string::npos) return;

  std::vector<std::string> given;
  for (const std::string& item : split(spec.substr(colon + 1), ',')) {
    if (item.empty()) continue;
    const size_t equals = item.find('=');
    KINDLING_CHECK(equals != std::string::npos, ValueError,
                   "loss {}: expected key=value, got '{}' (keys: {})", info.name, item,
                   valid_keys(info));
    const std::string key = trim(item.substr(0, equals)), text = trim(item.substr(equals + 1));
    for (const std::string& seen : given)
      KINDLING_CHECK(seen != key, ValueError, "loss {}: {} is given twice", info.name, key);
    given.push_back(key);
    if (key == "reduction") {
      reduction_ = parse_reduction(info, text);
      continue;
    }
    size_t index = 0;
    while (index < info.params.size() && key != info.params[index].key) ++index;
    KINDLING_CHECK(index < info.params.size(), ValueError,
                   "loss {} has no hyperparameter '{}'; valid keys: {}", info.name, key,
                   valid_keys(info));
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
                 "loss {}: set_progress needs epoch >= 0 and total_epochs >= 1, got {} of {}",
                 name(), epoch, total_epochs);
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
    case LossKind::label_smoothing: params[0] = float(number("eps")); break;
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
        params[2] = float(std::log1p(1.0 / number("d")));   // K = ln((1 + d) / d)
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
    case LossKind::poly1: params[0] = float(number("eps")); break;
    case LossKind::ce:
    case LossKind::lace:
    case LossKind::expectation:
    case LossKind::squentropy:
    case LossKind::ngl: break;
  }
  return desc;
}

Tensor Loss::forward(const Tensor& logits, const Tensor& labels) const {
  KINDLING_CHECK(logits.defined() && labels.defined(), ValueError,
                 "loss {}: logits and labels must both be defined tensors", name());
  KINDLING_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0) &&
                     logits.size(0) >= 1 && logits.size(1) >= 1,
                 ShapeError, "loss {}: needs logits [N,C] and labels [N] with N, C >= 1; got logits {} "
                 "and labels {}", name(), logits.describe(), labels.describe());
  KINDLING_CHECK(logits.dtype() == DType::f32 && labels.dtype() == DType::i64, DTypeError,
                 "loss {}: needs logits f32 and labels i64; got logits {} and labels {}", name(),
                 logits.describe(), labels.describe());
  KINDLING_CHECK(logits.device() == labels.device(), DeviceError,
                 "loss {}: logits and labels must be on one device; got logits {} and labels {}",
                 name(), logits.describe(), labels.describe());
  const int64_t N = logits.size(0), C = logits.size(1);
  KINDLING_CHECK(kind_ != LossKind::squentropy || C >= 2, ShapeError,
                 "loss squentropy: needs at least 2 classes; got logits {}", logits.describe());

  // One kernel call does it all: the label and finiteness checks, the rows, their mean or sum,
  // and the gradient of the output (so the backward only scales it). The kernel reads the logits
  // in place when they are contiguous and the labels at any stride.
  const Device device = logits.device();
  const TensorOptions f32_options = TensorOptions{}.with_device(device);
  const bool want_grad = GradMode::is_enabled() && logits.requires_grad();
  Tensor out = reduction_ == Reduction::none ? empty({N}, f32_options) : empty({}, f32_options);
  Tensor grad = want_grad ? empty({N, C}, f32_options) : Tensor();
  const Tensor z = logits.is_contiguous() ? logits : logits.detach().contiguous();
  backend(device).loss_rows(desc(C), out, grad, z, labels);
  if (want_grad) {
    // d(out)/d(logits) is the saved grad; chain rule: scale row n by the incoming grad of out
    // (a scalar, or row n's entry for reduction none).
    record(backward_name(kind_), {logits}, out, [grad](const GradOutputs& g) {
      // Only the saved gradient is captured: std::function keeps a closure this small inline.
      const Tensor& upstream = g[0];
      const bool per_row = upstream.dim() == 1;   // reduction none: row n scales by upstream[n]
      // loss.backward() seeds 1: the saved gradient is the answer, no multiply. A detached alias
      // counts as a second owner of the buffer while this closure lives, so AccumulateGrad copies
      // it under retain_graph and adopts it otherwise (the engine releases the closure first). On a
      // GPU, reading the seed would cost a sync.
      if (!per_row && upstream.device().is_cpu() && *upstream.data<float>() == 1.0f)
        return std::vector<Tensor>{grad.detach()};
      const int64_t N = grad.size(0), C = grad.size(1);
      const Shape strides = per_row ? Shape{upstream.stride(0), 0} : Shape{0, 0};
      Tensor logits_grad = empty({N, C}, TensorOptions{}.with_device(grad.device()));
      backend(grad.device()).binary(BinaryOp::Mul, logits_grad, grad,
                                    as_strided(upstream, {N, C}, strides, upstream.offset()));
      return std::vector<Tensor>{logits_grad};
    });
  }
  return out;
}

void throw_label_out_of_range(LossKind kind, int64_t row, int64_t label, const Tensor& logits) {
  throw_label_out_of_range(kind, row, label, logits.size(1), logits.describe());
}

void throw_label_out_of_range(LossKind kind, int64_t row, int64_t label, int64_t C,
                              const std::string& logits_description) {
  throw ValueError(fmt::format("loss {}: labels[{}] = {} is outside [0, {}) for logits {}",
                               loss_kind_name(kind), row, label, C, logits_description));
}

void throw_non_finite_logit(LossKind kind, int64_t row, const float* values, int64_t C) {
  int64_t column = 0;
  while (column < C - 1 && k_isfinite(values[column])) ++column;
  throw_non_finite_logit_at(kind, row, column, values[column]);
}

void throw_non_finite_logit_at(LossKind kind, int64_t row, int64_t column, float value) {
  throw ValueError(fmt::format("loss {}: logits row {} holds a non-finite value ({} at column {})",
                               loss_kind_name(kind), row, value, column));
}

}  // namespace kindling
