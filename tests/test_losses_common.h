// Shared by the loss tests: the specs every test walks, a double-precision reference built from
// the same row maths the kernels run, and small tensor helpers.
#pragma once
#include "core/rng.h"
#include "core/tensor.h"
#include "losses/loss.h"
#include "losses/loss_rows.h"

#include <string>
#include <vector>

namespace kindling::test {

// Every loss with its defaults, then with non-default hyperparameters.
inline const std::vector<std::string>& default_specs() {
  static const std::vector<std::string> specs = {"ce",
                                                 "label_smoothing",
                                                 "lace",
                                                 "expectation",
                                                 "ce_expectation_mix",
                                                 "min_ent",
                                                 "mix_ent",
                                                 "squentropy",
                                                 "square",
                                                 "ngl",
                                                 "focal",
                                                 "poly1"};
  return specs;
}
inline const std::vector<std::string>& non_default_specs() {
  static const std::vector<std::string> specs = {"label_smoothing:eps=0.3",
                                                 "ce_expectation_mix:F=0.2",
                                                 "ce_expectation_mix:F=0.5",
                                                 "min_ent:w1=1,w2=0.1,b1=e,b2=e",
                                                 "min_ent:w1=0.8,b1=e,w2=0.3,b2=10",
                                                 "mix_ent:w1=0.7,b1=e,w2=0.9,b2=e,d=1e-3",
                                                 "square:k=15,M=30",
                                                 "square:k=2,M=-1",
                                                 "focal:gamma=0.5,alpha=0.25",
                                                 "focal:gamma=0,alpha=2",
                                                 "focal:gamma=3.5",
                                                 "poly1:eps=-1",
                                                 "poly1:eps=0.5"};
  return specs;
}
inline std::vector<std::string> all_specs() {
  std::vector<std::string> specs = default_specs();
  for (const std::string& spec : non_default_specs()) specs.push_back(spec);
  return specs;
}

struct Reference {
  double value = 0;          // the batch loss (mean of the row losses)
  std::vector<double> grad;  // [N*C], d value / d z
  bool finite_inputs = true;
};

// The mean of the row losses over N rows of z [N*C] and its gradient, in double.
inline Reference reference(const LossDesc& desc, const std::vector<double>& z,
                           const std::vector<int64_t>& labels, int64_t C) {
  const int64_t N = int64_t(labels.size());
  Reference ref;
  ref.grad.assign(z.size(), 0.0);
  visit_loss(desc.kind, [&](auto row_maths) {
    using Row = decltype(row_maths);
    for (int64_t n = 0; n < N; ++n) {
      double value = 0;
      ref.finite_inputs &= loss_row<Row, double, double>(desc, z.data() + n * C, C, labels[size_t(n)],
                                                         ref.grad.data() + n * C, 1.0 / double(N), &value);
      ref.value += value / double(N);
    }
  });
  return ref;
}

// Uniform logits in [-scale, scale) and uniform labels, from a seeded generator.
inline std::vector<double> random_logits(Generator& gen, int64_t N, int64_t C, double scale) {
  std::vector<double> z(size_t(N * C));
  for (double& v : z) v = scale * (2.0 * gen.uniform() - 1.0);
  return z;
}
inline std::vector<int64_t> random_labels(Generator& gen, int64_t N, int64_t C) {
  std::vector<int64_t> labels(static_cast<size_t>(N));
  for (int64_t& y : labels) y = gen.randint(C);
  return labels;
}

inline std::vector<float> to_float(const std::vector<double>& values) {
  return std::vector<float>(values.begin(), values.end());
}
inline std::vector<double> to_double(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

// Runs `loss` forward and backward on the CPU (or `device`): {value, d value / d logits}.
struct FusedResult {
  double value = 0;
  std::vector<float> grad;
};
inline FusedResult run_fused(const Loss& loss, const std::vector<float>& z,
                             const std::vector<int64_t>& labels, int64_t C, Device device = Device::cpu()) {
  const int64_t N = int64_t(labels.size());
  Tensor logits = from_vector<float>(z, {N, C}).to(device);
  logits.set_requires_grad(true);
  const Tensor label_tensor =
      from_vector<int64_t>(labels, {N}, TensorOptions{}.with_dtype(DType::i64)).to(device);
  const Tensor out = loss(logits, label_tensor);
  out.backward();
  return {double(out.item<float>()), logits.grad().to_vector<float>()};
}

}  // namespace kindling::test
