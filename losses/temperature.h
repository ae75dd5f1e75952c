// Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): every logit is
// divided by one scalar T > 0 fitted on held-out logits by minimising their NLL. It changes the
// confidence of every prediction but no argmax, so accuracy is unchanged, and it separates how well
// a model ranks its classes from the scale of its logits (a loss that trains the true logit towards
// a fixed M, like the rescaled square loss, has logits that are not log-probabilities).
#pragma once
#include "core/tensor.h"

namespace kindling {

// The temperatures fit_temperature() searches: a fit that reaches a bound means the held-out logits
// want a still smaller (all right, with margins) or larger (no better than uniform) temperature.
inline constexpr double kMinTemperature = 0.01;
inline constexpr double kMaxTemperature = 100.0;

// mean over rows n of -ln softmax(logits[n] / T)[labels[n]], in double. logits [N, C] f32 and
// labels [N] i64 in [0, C), on any device (copied to the host), N >= 1; T finite and > 0.
// ShapeError / DTypeError / ValueError naming what is wrong otherwise.
double nll_at_temperature(const Tensor& logits, const Tensor& labels, double temperature);

// argmin over T in [kMinTemperature, kMaxTemperature] of nll_at_temperature(logits, labels, T).
// The NLL is convex in 1/T, so its derivative in 1/T is monotone: the fit bisects it on a log scale
// to a relative precision of 1e-12, in double, the same result on every machine and thread count.
// NaN when a logit is not finite (a diverged model has no temperature). Requires as above.
double fit_temperature(const Tensor& logits, const Tensor& labels);

// logits / T: a new f32 tensor on the host, [N, C] like `logits`.
Tensor scale_logits(const Tensor& logits, double temperature);

}  // namespace kindling
