#!/usr/bin/python3
"""PyTorch's side of bench/conv_bench.cpp: the ResNet-20 convolutions (batch 128 by default) and
batch norm, forward, data gradient and weight gradient timed separately, fastest of `reps` runs.
Usage: OPENBLAS_CORETYPE=Haswell python3 bench/conv_bench_torch.py [batch] [reps] [threads]"""
import sys
import time

import torch
import torch.nn.functional as F

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 128
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)


def best_ms(fn):
    fn()
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


print(f"threads {torch.get_num_threads()}, batch {batch}, torch {torch.__version__}")
total = [0.0, 0.0, 0.0]
with torch.no_grad():
    shapes = [(3, 16, 32, 1), (16, 16, 32, 1), (16, 32, 32, 2), (32, 32, 16, 1), (32, 64, 16, 2),
              (64, 64, 8, 1)]
    for C, K, H, stride in shapes:
        x = torch.randn(batch, C, H, H)
        w = torch.randn(K, C, 3, 3)
        y = F.conv2d(x, w, None, stride, 1)
        dy = torch.randn_like(y)
        gflop = 2 * batch * K * y.shape[2] * y.shape[3] * C * 9 / 1e9

        def backward(mask):
            return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [stride, stride], [1, 1],
                                                               [1, 1], False, [0, 0], 1, mask)

        fwd = best_ms(lambda: F.conv2d(x, w, None, stride, 1))
        bwd_data = best_ms(backward([True, False, False]))
        bwd_weight = best_ms(backward([False, True, False]))
        print(f"C={C:<3} K={K:<3} H={H:<3} s={stride}: fwd {fwd:7.2f} ms {gflop / fwd * 1e3:6.1f} GF/s | "
              f"bwd_data {bwd_data:7.2f} ms {gflop / bwd_data * 1e3:6.1f} GF/s | "
              f"bwd_weight {bwd_weight:7.2f} ms {gflop / bwd_weight * 1e3:6.1f} GF/s")
        total = [t + v for t, v in zip(total, (fwd, bwd_data, bwd_weight))]
print(f"sum over the six shapes: fwd {total[0]:.2f} ms, bwd_data {total[1]:.2f} ms, "
      f"bwd_weight {total[2]:.2f} ms")
for C in (16, 32, 64):
    H = 32 * 16 // C
    x = torch.randn(batch, C, H, H, requires_grad=True)
    weight = torch.ones(C, requires_grad=True)
    bias = torch.zeros(C, requires_grad=True)
    mean, var = torch.zeros(C), torch.ones(C)
    dy = torch.randn_like(x)
    fwd = best_ms(lambda: F.batch_norm(x, mean, var, weight, bias, True, 0.1, 1e-5))
    y = F.batch_norm(x, mean, var, weight, bias, True, 0.1, 1e-5)
    bwd = best_ms(lambda: torch.autograd.grad(y, [x, weight, bias], dy, retain_graph=True))
    print(f"batch_norm [{batch},{C},{H},{H}]: fwd_train {fwd:.2f} ms | bwd {bwd:.2f} ms")
