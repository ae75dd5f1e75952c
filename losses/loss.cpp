// The Loss op: input checks and the fused forward, which records a backward that only scales the
// gradient the kernel saved; the error messages both backends' kernels raise.
#include "losses/loss.h"

#include "core/autograd.h"
#include "core/backend.h"
#include "losses/loss_checks.h"
#include "losses/loss_kernels.h"

namespace kindling {
namespace {

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

Tensor Loss::forward(const Tensor& logits, const Tensor& labels) const {
  KINDLING_CHECK(logits.defined() && labels.defined(), ValueError,
                 "loss {}: logits and labels must both be defined tensors", name());
  KINDLING_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0) &&
                     logits.size(0) >= 1 && logits.size(1) >= 1,
                 ShapeError,
                 "loss {}: needs logits [N,C] and labels [N] with N, C >= 1; got logits {} "
                 "and labels {}",
                 name(), logits.describe(), labels.describe());
  KINDLING_CHECK(logits.dtype() == DType::f32 && labels.dtype() == DType::i64, DTypeError,
                 "loss {}: needs logits f32 and labels i64; got logits {} and labels {}", name(),
                 logits.describe(), labels.describe());
  KINDLING_CHECK(logits.device() == labels.device(), DeviceError,
                 "loss {}: logits and labels must be on one device; got logits {} and labels {}", name(),
                 logits.describe(), labels.describe());
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
  loss_rows(desc(C), out, grad, z, labels);
  if (want_grad) {
    // d(out)/d(logits) is the saved grad; chain rule: scale row n by the incoming grad of out
    // (a scalar, or row n's entry for reduction none).
    record(backward_name(kind_), {logits}, out, [grad](const GradOutputs& g) {
      // Only the saved gradient is captured: std::function keeps a closure this small inline.
      const Tensor& upstream = g[0];
      const bool per_row = upstream.dim() == 1;  // reduction none: row n scales by upstream[n]
      // loss.backward() seeds 1: the saved gradient is the answer, no multiply. A detached alias
      // counts as a second owner of the buffer while this closure lives, so AccumulateGrad copies
      // it under retain_graph and adopts it otherwise (the engine releases the closure first). On a
      // GPU, reading the seed would cost a sync.
      if (!per_row && upstream.device().is_cpu() && *upstream.data<float>() == 1.0f)
        return std::vector<Tensor>{grad.detach()};
      const int64_t N = grad.size(0), C = grad.size(1);
      const Shape strides = per_row ? Shape{upstream.stride(0), 0} : Shape{0, 0};
      Tensor logits_grad = empty({N, C}, TensorOptions{}.with_device(grad.device()));
      backend(grad.device())
          .binary(BinaryOp::Mul, logits_grad, grad, as_strided(upstream, {N, C}, strides, upstream.offset()));
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

void loss_rows(const LossDesc& loss, const Tensor& out, const Tensor& grad, const Tensor& logits,
               const Tensor& labels) {
#ifdef KINDLING_WITH_CUDA
  if (logits.device().is_cuda()) return cuda::loss_rows(loss, out, grad, logits, labels);
#endif
  KINDLING_CHECK(logits.device().is_cpu(), DeviceError, "loss {}: no kernel for logits {}",
                 loss_kind_name(loss.kind), logits.describe());
  cpu::loss_rows(loss, out, grad, logits, labels);
}

}  // namespace kindling
