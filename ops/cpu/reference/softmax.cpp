// Reference softmax over the last dim, row by row, in double.
#include "ops/cpu/reference/reference_backend.h"

#include <cmath>

namespace kindling {

// in, out [rows, C]: out[r,j] = exp(in[r,j]) / sum_i exp(in[r,i]), or its log; the row maximum m is
// subtracted first so that no exp overflows: log out[r,j] = in[r,j] - m - log sum_i exp(in[r,i] - m).
void ReferenceCpuBackend::softmax_fwd(const Tensor& out, const Tensor& in, bool log) {
  const int64_t rows = in.size(0), C = in.size(1);
  const float* x = in.data<float>();
  float* y = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    double m = xr[0];
    for (int64_t j = 1; j < C; ++j) m = std::fmax(m, xr[j]);
    double sum = 0;
    for (int64_t j = 0; j < C; ++j) sum += std::exp(xr[j] - m);
    for (int64_t j = 0; j < C; ++j) {
      const double log_p = xr[j] - m - std::log(sum);
      y[r * C + j] = float(log ? log_p : std::exp(log_p));
    }
  }
}

// grad_in, grad_out, out [rows, C], g = grad_out:
//   log:  grad_in[r,j] = g[r,j] - exp(out[r,j]) * sum_i g[r,i]
//   else: grad_in[r,j] = out[r,j] * (g[r,j] - sum_i g[r,i] * out[r,i])
void ReferenceCpuBackend::softmax_bwd(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out,
                                      bool log) {
  const int64_t rows = out.size(0), C = out.size(1);
  const float* g = grad_out.data<float>();
  const float* y = out.data<float>();
  float* dx = grad_in.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t j = 0; j < C; ++j) sum += log ? double(g[r * C + j]) : double(g[r * C + j]) * y[r * C + j];
    for (int64_t j = 0; j < C; ++j) {
      const int64_t i = r * C + j;
      dx[i] = float(log ? g[i] - std::exp(double(y[i])) * sum : y[i] * (g[i] - sum));
    }
  }
}

}  // namespace kindling
