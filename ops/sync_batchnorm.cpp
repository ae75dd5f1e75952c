// sync_batch_norm: batch normalisation over the global batch of a data-parallel job, composed from
// differentiable ops around one differentiable "sum over ranks" (its backward sums the gradient
// over the ranks too: each rank's loss depends on every rank's sums).
#include "ops/batchnorm.h"

#include "core/autograd.h"
#include "ops/ops.h"

namespace kindling {
namespace {

Tensor summed_over_ranks(const Tensor& local, const SumOverRanks& sum_over_ranks) {
  Tensor total = local.detach().contiguous().clone();
  sum_over_ranks(total);
  if (needs_grad({local}))
    record("sum_over_ranks", {local}, total, [sum_over_ranks](const GradOutputs& g) {
      Tensor grad = g[0].contiguous().clone();
      sum_over_ranks(grad);
      return std::vector<Tensor>{grad};
    });
  return total;
}

}  // namespace

Tensor sync_batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias,
                       const Tensor& running_mean, const Tensor& running_var, double momentum, double eps,
                       const SumOverRanks& sum_over_ranks) {
  KINDLING_CHECK(input.defined() && input.dtype() == DType::f32 && input.dim() >= 2 && input.dim() <= 4,
                 ShapeError, "sync_batch_norm: input must be f32 [N,C], [N,C,L] or [N,C,H,W], got {}",
                 input.defined() ? input.describe() : "undefined");
  const int64_t C = input.size(1);
  Shape per_channel(size_t(input.dim()), 1);
  per_channel[1] = C;
  std::vector<int64_t> reduced{0};
  for (int64_t d = 2; d < input.dim(); ++d) reduced.push_back(d);

  Tensor count = from_vector(std::vector<int64_t>{input.numel() / std::max<int64_t>(C, 1)}, {1});
  sum_over_ranks(count);
  const int64_t M = count.item<int64_t>();
  KINDLING_CHECK(
      M > 1, ValueError,
      "sync_batch_norm: expected more than one value per channel over all ranks, got {} for input {}", M,
      input.describe());

  const Tensor mean = div(summed_over_ranks(sum(input, reduced), sum_over_ranks), double(M));
  const Tensor centered = sub(input, mean.reshape(per_channel));
  const Tensor var = div(summed_over_ranks(sum(square(centered), reduced), sum_over_ranks), double(M));
  Tensor y = mul(centered, rsqrt(add(var, eps)).reshape(per_channel));
  if (weight.defined()) y = mul(y, weight.reshape(per_channel));
  if (bias.defined()) y = add(y, bias.reshape(per_channel));

  if (running_mean.defined()) {
    NoGradGuard no_grad;
    Tensor(running_mean).mul_(1 - momentum).add_(mean.to(running_mean.device()), momentum);
    const double unbiased = double(M) / double(M - 1);
    Tensor(running_var).mul_(1 - momentum).add_(var.to(running_var.device()), momentum * unbiased);
  }
  return y;
}

}  // namespace kindling
